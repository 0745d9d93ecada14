"""Install, service and package (issue 11): `make install` into a DESTDIR and the installed
broker run with the installed configuration and tools; the systemd unit checked by
`systemd-analyze verify` and its system call filter checked against every system call the
installed broker makes (strace); the man pages rendered with warnings on; `make deb` and the
package's metadata, layout and maintainer scripts; the `user` option (a root start that
drops to `nobody`, a user that does not exist); sd_notify's messages to a socket the test owns.

The install and package tests build with make, under a lock, since the suite runs twice side
by side (1 and 4 workers) from one checkout; each run installs into its own temp dirs. They
use the release binaries that `make install` installs, the other tests the suite's --bin."""

import fcntl
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import BIN, KIND, REPO, Broker, free_port, starling_only

MAKE_LOCK = os.path.join(REPO, "build", ".install-test.lock")
SYSCALL_IO_URING = {"io_uring_setup", "io_uring_enter", "io_uring_register"}


def run_make(*args, timeout=900):
    """`make -s -C REPO ARGS`, one at a time across processes; the outer make's job server
    is not inherited (the suite may run under `make test`)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    os.makedirs(os.path.dirname(MAKE_LOCK), exist_ok=True)
    with open(MAKE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.run(["make", "-s", "-C", REPO] + list(args), env=env,
                              capture_output=True, text=True, timeout=timeout)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def config_options():
    """The option names of src/base/config.c's table, except those it refuses as
    not supported yet."""
    with open(os.path.join(REPO, "src", "base", "config.c")) as f:
        text = f.read()
    table = text[text.index("static const struct option options[]"):]
    table = table[:table.index("};")]
    names = []
    for m in re.finditer(r'(INT_OPT|BOOL_OPT|FN_OPT|TLS_OPT)\(\s*"?([a-z0-9_.]+)"?\s*,([^)]*)\)',
                         table):
        if "opt_unsupported" not in m.group(3):
            names.append(m.group(2))
    # The limits and client-id options (config_limits.c): the first name of each test, so
    # that an alias (maximum_qos) is not asked for.
    with open(os.path.join(REPO, "src", "base", "config_limits.c")) as f:
        names += re.findall(r'\bif \(strcmp\(name, "([a-z0-9_]+)"\)', f.read())
    # The bridge options (config_bridge.c's table of a block's options, and `connection`),
    # except Mosquitto's older names, which the pages mention beside the new ones.
    with open(os.path.join(REPO, "src", "base", "config_bridge.c")) as f:
        text = f.read()
    table = text[text.index("block_names[] = {"):]
    table = table[:table.index("};")]
    old = {"clientid", "username", "password", "addresses"}
    names += ["connection"] + [n for n in re.findall(r'"([a-z0-9_]+)"', table) if n not in old]
    return names


def proc_ids(pid):
    """(uids, gids, groups) of a process from /proc/PID/status."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                ids[key] = [int(v) for v in value.split()]
    return ids["Uid"], ids["Gid"], ids["Groups"]


def expand_syscall_group(name, seen=None):
    """The system calls of a systemd group (@name), nested groups expanded."""
    seen = set() if seen is None else seen
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                         text=True, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        if word.startswith("@"):
            if word not in seen:
                seen.add(word)
                calls |= expand_syscall_group(word, seen)
        else:
            calls.add(word)
    return calls


def render_man(path):
    """Renders a man page as man(1) does, every groff warning on: (status, stdout, stderr)."""
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8")
    p = subprocess.run(["man", "--warnings", "-l", path], env=env, capture_output=True,
                       text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


class NotifySocket:
    """A Unix datagram socket standing in for systemd's: what starlingd sends through
    sd_notify arrives here, one datagram per call."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # A broker that has become another user still sends to it, as to systemd's.
        os.chmod(self.path, 0o777)
        self.got = []

    def wait(self, needle, timeout=10.0):
        """The first datagram (from now on, kept ones first) holding `needle`, else fails."""
        for i, msg in enumerate(self.got):
            if needle in msg:
                del self.got[:i + 1]
                return msg
        self.got.clear()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            if needle in msg:
                return msg
            self.got.append(msg)
        raise AssertionError("no notification with %r within %.0f s (got %r)"
                             % (needle, timeout, self.got))

    def close(self):
        self.sock.close()


@starling_only("Starling's install, unit, man pages and package")
class InstallTest(unittest.TestCase):
    """`make install DESTDIR=...` once for the class; the tests read and run what it put there."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-install-")
        os.chmod(cls.tmp, 0o755)  # the broker that drops to nobody reaches its files
        cls.root = os.path.join(cls.tmp, "root")
        p = run_make("install", "DESTDIR=" + cls.root)
        if p.returncode != 0:
            raise AssertionError("make install failed:\n" + p.stdout + p.stderr)
        cls.prefix = os.path.join(cls.root, "usr", "local")
        cls.unit = os.path.join(cls.prefix, "lib", "systemd", "system", "starlingd.service")
        cls.conf = os.path.join(cls.root, "etc", "starling", "starling.conf")
        cls.mandir = os.path.join(cls.prefix, "share", "man")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_layout(self):
        """Binaries in sbin and bin, executable; man pages in their sections; the unit, the
        configuration and the persistence directory it names."""
        files = {
            "usr/local/sbin/starlingd": 0o755,
            "usr/local/bin/starling-pub": 0o755,
            "usr/local/bin/starling-sub": 0o755,
            "usr/local/bin/starling-passwd": 0o755,
            "usr/local/bin/starling-bench": 0o755,
            "usr/local/share/man/man8/starlingd.8": 0o644,
            "usr/local/share/man/man5/starling.conf.5": 0o644,
            "usr/local/share/man/man1/starling-pub.1": 0o644,
            "usr/local/share/man/man1/starling-sub.1": 0o644,
            "usr/local/share/man/man1/starling-passwd.1": 0o644,
            "usr/local/share/man/man1/starling-bench.1": 0o644,
            "usr/local/lib/systemd/system/starlingd.service": 0o644,
            "etc/starling/starling.conf": 0o644,
        }
        for rel, mode in files.items():
            path = os.path.join(self.root, rel)
            self.assertTrue(os.path.isfile(path), rel)
            self.assertEqual(os.stat(path).st_mode & 0o777, mode, rel)
        self.assertTrue(os.path.isdir(os.path.join(self.root, "var/lib/starling")))
        with open(self.unit) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/local/sbin/starlingd -c /etc/starling/starling.conf\n", unit)
        self.assertIn("ReadWritePaths=/var/lib/starling\n", unit)
        self.assertNotRegex(unit, r"@[A-Z]+@", "a path left unsubstituted")

    def _unit_for_verify(self, extra=""):
        """The installed unit with ExecStart pointing into DESTDIR (verify checks that the
        program exists), plus `extra` lines in [Service]."""
        with open(self.unit) as f:
            text = f.read()
        text = text.replace("ExecStart=/usr/local/sbin/", "ExecStart=%s/sbin/" % self.prefix)
        text = text.replace("[Service]\n", "[Service]\n" + extra)
        d = tempfile.mkdtemp(dir=self.tmp)
        path = os.path.join(d, "starlingd.service")
        with open(path, "w") as f:
            f.write(text)
        return path

    def _verify(self, path):
        # verify runs `man` for each Documentation= page: the installed ones must be found.
        env = dict(os.environ, MANPATH=self.mandir, SYSTEMD_LOG_LEVEL="info")
        return subprocess.run(["systemd-analyze", "verify", path], env=env,
                              capture_output=True, text=True, timeout=60)

    def test_unit_verifies(self):
        """`systemd-analyze verify` accepts the installed unit without a warning, and says so
        when a key is wrong (so that this check can fail)."""
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        p = self._verify(self._unit_for_verify())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "", "systemd-analyze verify warned")
        bad = self._verify(self._unit_for_verify("LimitMEMLOK=64M\n"))
        self.assertIn("Unknown key", bad.stderr)
        with open(self.unit) as f:
            unit = f.read()
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "LimitNOFILE=",
                     "LimitMEMLOCK=", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "ProtectHome=yes", "PrivateTmp=yes", "RestrictAddressFamilies="):
            self.assertIn(line, unit)

    def _unit_syscalls(self):
        """Every system call the unit's SystemCallFilter= allows."""
        with open(self.unit) as f:
            lines = [l for l in f.read().splitlines() if l.startswith("SystemCallFilter=")]
        self.assertEqual(len(lines), 1, "one allow-list line expected")
        allowed = set()
        for word in lines[0].split("=", 1)[1].split():
            allowed |= expand_syscall_group(word) if word.startswith("@") else {word}
        return allowed

    def test_unit_syscall_filter_allows_what_the_broker_calls(self):
        """The installed broker under strace -f, through start (as root, dropping to nobody,
        persistence on, told of a notify socket), traffic, a reload and a shutdown: every
        system call it makes is in the unit's filter, io_uring's among them (systemd 252's
        @system-service has none of them)."""
        for prog in ("systemd-analyze", "strace"):
            if not shutil.which(prog):
                self.skipTest(prog + " is not installed")
        allowed = self._unit_syscalls()
        self.assertLessEqual(SYSCALL_IO_URING, allowed)
        d = tempfile.mkdtemp(dir=self.tmp)
        os.chmod(d, 0o755)
        data = os.path.join(d, "data")
        os.mkdir(data)
        root_start = os.geteuid() == 0
        if root_start:
            os.chown(data, pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
        port = free_port()
        conf = os.path.join(d, "starling.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\nworker_threads 2\n"
                    "persistence true\npersistence_location %s\nlog_dest stderr\n%s"
                    % (port, data, "user nobody\n" if root_start else ""))
        notify = NotifySocket(d)
        trace = os.path.join(d, "trace")
        env = dict(os.environ, NOTIFY_SOCKET=notify.path)
        log = open(os.path.join(d, "log"), "w")
        strace = subprocess.Popen(["strace", "-f", "-qq", "-o", trace,
                                   os.path.join(self.prefix, "sbin", "starlingd"), "-c", conf],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            notify.wait("READY=1")
            pid = self._child_of(strace.pid)
            pub = os.path.join(self.prefix, "bin", "starling-pub")
            sub = os.path.join(self.prefix, "bin", "starling-sub")
            subprocess.run([pub, "-p", str(port), "-t", "t/1", "-m", "kept", "-q", "1", "-r"],
                           check=True, timeout=10)
            out = subprocess.run([sub, "-p", str(port), "-t", "t/#", "-C", "1", "-W", "5"],
                                 capture_output=True, text=True, timeout=10)
            self.assertEqual(out.stdout, "kept\n")
            os.kill(pid, signal.SIGHUP)
            notify.wait("RELOADING=1")
            notify.wait("READY=1")
            os.kill(pid, signal.SIGTERM)
            self.assertEqual(strace.wait(timeout=20), 0)
        finally:
            if strace.poll() is None:
                strace.kill()
                strace.wait()
            log.close()
            notify.close()
        used = set()
        with open(trace) as f:
            for line in f:
                m = re.match(r"^\d+\s+([a-z_0-9]+)\(", line)
                if m:
                    used.add(m.group(1))
        self.assertLessEqual(SYSCALL_IO_URING, used)
        if root_start:
            self.assertIn("setuid", used)
        self.assertEqual(sorted(used - allowed), [], "calls the unit's filter would refuse")

    @staticmethod
    def _child_of(ppid):
        found = []

        def look():
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open("/proc/%s/stat" % entry) as f:
                            fields = f.read().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    if int(fields[1]) == ppid:
                        found.append(int(entry))
                        return True
            return False

        if not wait_for(look, 5):
            raise AssertionError("no child of strace")
        return found[0]

    def test_man_pages_render(self):
        """Each installed page renders with groff's warnings on and none printed; a broken
        page does print one (so that this check can fail)."""
        if not shutil.which("man"):
            self.skipTest("man is not installed")
        pages = {"man8/starlingd.8": "starlingd", "man5/starling.conf.5": "starling.conf",
                 "man1/starling-pub.1": "starling-pub", "man1/starling-sub.1": "starling-sub",
                 "man1/starling-passwd.1": "starling-passwd",
                 "man1/starling-bench.1": "starling-bench"}
        for rel, name in pages.items():
            status, out, err = render_man(os.path.join(self.mandir, rel))
            self.assertEqual(status, 0, rel)
            self.assertEqual(err, "", rel + " warns")
            self.assertIn("NAME", out, rel)
            self.assertRegex(out.replace("\u2010", "-"), r"\n +%s +- " % re.escape(name), rel)
            self.assertIn("SEE ALSO", out, rel)
        broken = os.path.join(self.tmp, "broken.1")
        with open(broken, "w") as f:
            f.write('.TH BROKEN 1\n.SH NAME\nbroken \\- x\n.BOGUS\n\\fQ\n')
        self.assertNotEqual(render_man(broken)[2], "")

    def test_every_option_documented(self):
        """Every option the parser knows is in the default configuration (as "#name" or an
        active line) and has an entry in starling.conf(5)."""
        names = config_options()
        self.assertGreaterEqual(len(names), 40)
        with open(self.conf) as f:
            conf = f.read()
        with open(os.path.join(self.mandir, "man5", "starling.conf.5")) as f:
            page = f.read()
        for name in names:
            self.assertRegex(conf, r"(?m)^#?%s( |$)" % re.escape(name),
                             "%s is missing from tools/dist/starling.conf" % name)
            self.assertRegex(page, r"(?m)^\.B[IR]? %s( |$)" % re.escape(name.replace("-", "\\-")),
                             "%s is missing from tools/man/starling.conf.5" % name)
        # Each program's page names every flag its --help lists (starling-passwd: its usage).
        for prog, page_name in (("bin/starling-pub", "man1/starling-pub.1"),
                                ("bin/starling-sub", "man1/starling-sub.1"),
                                ("bin/starling-bench", "man1/starling-bench.1"),
                                ("bin/starling-passwd", "man1/starling-passwd.1"),
                                ("sbin/starlingd", "man8/starlingd.8")):
            p = subprocess.run([os.path.join(self.prefix, prog), "--help"],
                               capture_output=True, text=True)
            help_text = p.stdout + p.stderr
            with open(os.path.join(self.mandir, page_name)) as f:
                text = re.sub(r"\\f[BIRP]", " ", f.read().replace("\\-", "-"))
            flags = set(re.findall(r"(?m)^\s{1,8}(--?[a-zA-Z][a-zA-Z0-9-]*)", help_text))
            flags |= set(re.findall(r"(?m)^\s{1,8}-[a-zA-Z], (--[a-z][a-z0-9-]*)", help_text))
            self.assertGreaterEqual(len(flags), 5, prog)
            for flag in flags:
                self.assertRegex(text, r"(?<![\w-])%s(?![\w-])" % re.escape(flag),
                                 "%s does not name %s" % (page_name, flag))

    def test_installed_broker_serves(self):
        """The installed starlingd with the installed configuration (a free port and a temp
        persistence directory put in): the installed starling-pub's retained message is read
        back by the installed starling-sub, and again after a restart (persistence true is
        the installed default)."""
        d = tempfile.mkdtemp(dir=self.tmp)
        port = free_port()
        with open(self.conf) as f:
            text = f.read()
        text = text.replace("persistence_location /var/lib/starling",
                            "persistence_location " + os.path.join(d, "data"))
        self.assertIn(os.path.join(d, "data"), text)
        text += "\nlistener %d 127.0.0.1\nallow_anonymous true\n" % port
        if os.geteuid() == 0 and user_exists("starling"):
            text += "user root\n"
        conf = os.path.join(d, "starling.conf")
        with open(conf, "w") as f:
            f.write(text)
        starlingd = os.path.join(self.prefix, "sbin", "starlingd")
        pub = os.path.join(self.prefix, "bin", "starling-pub")
        sub = os.path.join(self.prefix, "bin", "starling-sub")
        for round_ in range(2):
            log = open(os.path.join(d, "log%d" % round_), "w")
            broker = subprocess.Popen([starlingd, "-c", conf], stdout=log,
                                      stderr=subprocess.STDOUT, cwd=d)
            try:
                self.assertTrue(wait_for(lambda: harness._is_listening(port, broker.pid)),
                                "the installed broker does not listen")
                if round_ == 0:
                    subprocess.run([pub, "-p", str(port), "-t", "inst/a", "-m", "installed",
                                    "-q", "1", "-r"], check=True, timeout=10)
                out = subprocess.run([sub, "-p", str(port), "-t", "inst/#", "-C", "1", "-W", "5",
                                      "-v"], capture_output=True, text=True, timeout=10)
                self.assertEqual(out.stdout, "inst/a installed\n")
                broker.send_signal(signal.SIGTERM)
                self.assertEqual(broker.wait(timeout=20), 0)
            finally:
                if broker.poll() is None:
                    broker.kill()
                    broker.wait()
                log.close()
        self.assertTrue(os.listdir(os.path.join(d, "data")))

    def test_uninstall(self):
        """make uninstall removes what make install put in place; an edited configuration and
        a persistence directory with data stay."""
        root = os.path.join(self.tmp, "u")
        self.assertEqual(run_make("install", "DESTDIR=" + root).returncode, 0)
        p = run_make("uninstall", "DESTDIR=" + root)
        self.assertEqual(p.returncode, 0, p.stderr)
        left = [os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs]
        self.assertEqual(left, [])
        self.assertEqual(run_make("install", "DESTDIR=" + root).returncode, 0)
        conf = os.path.join(root, "etc", "starling", "starling.conf")
        with open(conf, "a") as f:
            f.write("max_connections 10\n")
        with open(os.path.join(root, "var", "lib", "starling", "starling.db.lock"), "w"):
            pass
        p = run_make("install", "DESTDIR=" + root)
        self.assertIn("keeping", p.stdout)
        with open(conf) as f:
            self.assertIn("max_connections 10", f.read())
        self.assertEqual(run_make("uninstall", "DESTDIR=" + root).returncode, 0)
        left = sorted(os.path.relpath(os.path.join(dp, f), root)
                      for dp, _, fs in os.walk(root) for f in fs)
        self.assertEqual(left, ["etc/starling/starling.conf", "var/lib/starling/starling.db.lock"])


@starling_only("Starling's Debian package")
class DebTest(unittest.TestCase):
    """`make deb` into a temp dir: metadata, layout, maintainer scripts."""

    @classmethod
    def setUpClass(cls):
        for prog in ("dpkg-deb", "dpkg-shlibdeps"):
            if not shutil.which(prog):
                raise unittest.SkipTest(prog + " is not installed")
        cls.tmp = tempfile.mkdtemp(prefix="starling-deb-")
        p = run_make("deb", "DEB_STAGE=" + os.path.join(cls.tmp, "stage"),
                     "DEB_OUT=" + os.path.join(cls.tmp, "out"))
        if p.returncode != 0:
            raise AssertionError("make deb failed:\n" + p.stdout + p.stderr)
        cls.deb = p.stdout.strip().splitlines()[-1]
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                              text=True).stdout.strip()
        version = re.search(r'STARLING_VERSION "([^"]+)"',
                            open(os.path.join(REPO, "src/broker/sys.h")).read()).group(1)
        assert os.path.basename(cls.deb) == "starling_%s_%s.deb" % (version, arch), cls.deb
        cls.x = os.path.join(cls.tmp, "x")
        subprocess.run(["dpkg-deb", "-x", cls.deb, cls.x], check=True)
        subprocess.run(["dpkg-deb", "-e", cls.deb, os.path.join(cls.x, "DEBIAN")], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def field(self, name):
        return subprocess.run(["dpkg-deb", "-f", self.deb, name], capture_output=True,
                              text=True, check=True).stdout.strip()

    def test_control(self):
        info = subprocess.run(["dpkg-deb", "--info", self.deb], capture_output=True, text=True)
        self.assertEqual(info.returncode, 0, info.stderr)
        self.assertEqual(self.field("Package"), "starling")
        self.assertTrue(self.field("Maintainer"))
        self.assertTrue(self.field("Description"))
        depends = [d.split()[0] for d in self.field("Depends").split(", ")]
        self.assertIn("adduser", depends)
        # Every shared library the binaries need comes from a package in Depends.
        needed = set()
        for b in ("usr/sbin/starlingd", "usr/bin/starling-pub", "usr/bin/starling-bench"):
            dyn = subprocess.run(["readelf", "-d", os.path.join(self.x, b)],
                                 capture_output=True, text=True).stdout
            needed |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn))
        self.assertIn("libsystemd.so.0", needed)
        self.assertIn("liburing.so.2", needed)
        for lib in needed:
            path = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
            m = re.search(r"\s%s \(libc6,x86-64\) => (\S+)" % re.escape(lib), path)
            self.assertIsNotNone(m, lib)
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(m.group(1))],
                                   capture_output=True, text=True)
            if owner.returncode != 0:  # merged /usr: dpkg knows /lib/... paths
                owner = subprocess.run(["dpkg", "-S", m.group(1)], capture_output=True,
                                       text=True)
            pkg = owner.stdout.split(":")[0]
            self.assertIn(pkg, depends, "%s (%s) is not in Depends" % (lib, pkg))
        with open(os.path.join(self.x, "DEBIAN", "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/starling/starling.conf"])

    def test_layout(self):
        contents = subprocess.run(["dpkg-deb", "--contents", self.deb], capture_output=True,
                                  text=True, check=True).stdout
        paths = {line.split()[-1] for line in contents.splitlines()}
        for p in ("./usr/sbin/starlingd", "./usr/bin/starling-pub", "./usr/bin/starling-sub",
                  "./usr/bin/starling-passwd", "./usr/bin/starling-bench",
                  "./etc/starling/starling.conf", "./lib/systemd/system/starlingd.service",
                  "./usr/share/man/man8/starlingd.8.gz", "./usr/share/man/man5/starling.conf.5.gz",
                  "./usr/share/man/man1/starling-bench.1.gz"):
            self.assertIn(p, paths)
        for line in contents.splitlines():
            self.assertIn(" root/root ", line)
        self.assertFalse(any(p.startswith("./var") for p in paths),
                         "/var/lib/starling is the postinst's, owned by the starling user")
        with open(os.path.join(self.x, "lib/systemd/system/starlingd.service")) as f:
            self.assertIn("ExecStart=/usr/sbin/starlingd -c /etc/starling/starling.conf", f.read())
        md5 = subprocess.run(["md5sum", "--quiet", "-c", os.path.join(self.x, "DEBIAN", "md5sums")],
                             cwd=self.x, capture_output=True, text=True)
        self.assertEqual(md5.returncode, 0, md5.stdout + md5.stderr)

    def test_maintainer_scripts(self):
        """The scripts parse, are executable, and do what the package promises: the user and
        its directory, the service enabled and started only where systemd runs, stopped before
        removal, the data removed on purge."""
        scripts = {}
        for name in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.x, "DEBIAN", name)
            self.assertTrue(os.access(path, os.X_OK), name)
            self.assertEqual(subprocess.run(["sh", "-n", path]).returncode, 0, name)
            with open(path) as f:
                scripts[name] = f.read()
        post = scripts["postinst"]
        self.assertIn("adduser --quiet --system", post)
        self.assertIn("chown starling:starling /var/lib/starling", post)
        self.assertIn("deb-systemd-helper enable starlingd.service", post)
        self.assertRegex(post, r"if \[ -d /run/systemd/system \]; then[\s\S]*deb-systemd-invoke")
        self.assertIn("deb-systemd-invoke stop starlingd.service", scripts["prerm"])
        self.assertRegex(scripts["postrm"], r"purge\)[\s\S]*rm -rf /var/lib/starling")
        # An unknown action is refused, as dpkg expects.
        for name in ("postinst", "postrm"):
            p = subprocess.run(["sh", os.path.join(self.x, "DEBIAN", name), "bogus-action"],
                               capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0, name)


    def _run_scripts(self, steps, systemd=True):
        """Runs maintainer scripts in a private mount namespace whose /var/lib and /run are
        empty tmpfs (nothing of this machine changes), with the commands that would change
        the system (adduser, addgroup, chown, systemctl, deb-systemd-helper,
        deb-systemd-invoke) replaced by stubs that log their arguments. steps: (script,
        args...) tuples. Returns (log lines, /var/lib listing after each step)."""
        stubs = os.path.join(self.tmp, "stubs")
        shutil.rmtree(stubs, ignore_errors=True)
        os.makedirs(stubs)
        log = os.path.join(self.tmp, "calls.log")
        for cmd in ("adduser", "addgroup", "chown", "systemctl", "deb-systemd-helper",
                    "deb-systemd-invoke"):
            with open(os.path.join(stubs, cmd), "w") as f:
                # deb-systemd-helper was-enabled: true, as on a first installation.
                f.write('#!/bin/sh\necho "%s $*" >>%s\nexit 0\n' % (cmd, log))
            os.chmod(os.path.join(stubs, cmd), 0o755)
        with open(os.path.join(stubs, "getent"), "w") as f:
            f.write("#!/bin/sh\nexit 2\n")  # no starling user or group yet
        os.chmod(os.path.join(stubs, "getent"), 0o755)
        script = ["set -e", "mount -t tmpfs none /var/lib", "mount -t tmpfs none /run"]
        if systemd:
            script.append("mkdir -p /run/systemd/system")
        for step in steps:
            script.append("sh %s %s" % (os.path.join(self.x, "DEBIAN", step[0]),
                                        " ".join(step[1:])))
            script.append("echo \"== %s: $(ls /var/lib)\" >>%s" % (" ".join(step), log))
        if os.path.exists(log):
            os.unlink(log)
        env = dict(os.environ, PATH=stubs + ":" + os.environ["PATH"])
        p = subprocess.run(["unshare", "-m", "sh", "-c", "\n".join(script)], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(log) as f:
            return f.read().splitlines()

    def test_maintainer_scripts_run(self):
        """install, upgrade, remove and purge, as dpkg runs the scripts: the user and group
        made, /var/lib/starling made and given to them, the service enabled and started
        (restarted on an upgrade) where systemd runs, stopped before removal, the data
        deleted on purge; without systemd, nothing is started."""
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare for a private mount namespace")
        if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
            self.skipTest("unshare -m is not permitted here")
        calls = self._run_scripts([("postinst", "configure"), ("postinst", "configure", "0.0.9"),
                                   ("prerm", "remove"), ("postrm", "remove"),
                                   ("postrm", "purge")])
        text = "\n".join(calls)
        self.assertIn("addgroup --quiet --system starling", text)
        self.assertIn("adduser --quiet --system --no-create-home --ingroup starling "
                      "--home /var/lib/starling --shell /usr/sbin/nologin starling", text)
        self.assertIn("chown starling:starling /var/lib/starling", text)
        self.assertIn("deb-systemd-helper enable starlingd.service", text)
        self.assertIn("deb-systemd-invoke start starlingd.service", text)
        self.assertIn("deb-systemd-invoke restart starlingd.service", text)
        self.assertIn("deb-systemd-invoke stop starlingd.service", text)
        self.assertIn("deb-systemd-helper purge starlingd.service", text)
        self.assertIn("== postinst configure: starling", text)
        self.assertIn("== postrm remove: starling", text)
        self.assertIn("== postrm purge: ", text)
        self.assertNotIn("== postrm purge: starling", text)
        # start, restart, stop: in that order
        order = [l for l in calls if l.startswith("deb-systemd-invoke")]
        self.assertEqual([l.split()[1] for l in order], ["start", "restart", "stop"])
        calls = self._run_scripts([("postinst", "configure"), ("prerm", "remove")],
                                  systemd=False)
        self.assertFalse([l for l in calls if l.startswith(("deb-systemd-invoke", "systemctl"))])


@starling_only("Starling's user option and sd_notify")
class UserTest(harness.BrokerTestCase):
    """The `user` option on the suite's broker (--bin)."""

    def setUp(self):  # each test starts its own broker, with its own `user`
        self._teardowns = []
        self.broker = None
        self.addCleanup(self._stop)

    def tearDown(self):
        self._stop()

    def _stop(self):
        while self._teardowns:
            self._teardowns.pop()()
        if self.broker is not None:
            broker, self.broker = self.broker, None
            broker.stop()

    def _owned_dir(self, user):
        d = tempfile.mkdtemp(prefix="starling-user-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        pw = pwd.getpwnam(user)
        data = os.path.join(d, "data")
        os.mkdir(data)
        os.chown(data, pw.pw_uid, pw.pw_gid)
        return d, data, pw

    def test_drop_to_nobody(self):
        """Started as root with `user nobody`: every uid and gid of the process is nobody's,
        root is in none of its groups, the files it made are nobody's, and it serves clients,
        reloads on SIGHUP and shuts down cleanly."""
        if os.geteuid() != 0:
            self.skipTest("needs root to drop privileges")
        d, data, pw = self._owned_dir("nobody")
        self.broker = Broker(["user nobody", "persistence true", "persistence_location " + data,
                              "pid_file " + os.path.join(data, "starlingd.pid"),
                              "log_dest file " + os.path.join(data, "broker.log"),
                              "log_dest stderr"])
        self.broker.start()
        uids, gids, groups = proc_ids(self.broker.pid)
        self.assertEqual(uids, [pw.pw_uid] * 4)
        self.assertEqual(gids, [pw.pw_gid] * 4)
        self.assertNotIn(0, groups)
        for name in os.listdir(data):
            st = os.stat(os.path.join(data, name))
            self.assertEqual((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid), name)
        self.assertIn("starlingd.pid", os.listdir(data))
        self.assertIn("broker.log", os.listdir(data))
        sub = self.client("sub")
        got = self.collect(sub, "u/#", qos=1)
        pub = self.client("pub")
        self.publish(pub, "u/1", b"as nobody", qos=1, retain=True)
        self.wait_for(lambda: len(got) == 1)
        os.kill(self.broker.pid, signal.SIGHUP)
        self.wait_for(lambda: "Reload complete." in self.broker.log_text())
        self.publish(pub, "u/2", b"after reload", qos=1)
        self.wait_for(lambda: len(got) == 2)
        self.assertEqual(got.payloads(), [b"as nobody", b"after reload"])
        self.assertIn("Running as user nobody", self.broker.log_text())
        self._stop()
        self.assertNotIn("starlingd.pid", os.listdir(data))

    def assert_runs_as_nobody(self):
        """The broker's ids become nobody's: it binds its ports as root, so the port may
        answer a moment before the drop (no client is served before it)."""
        want = [pwd.getpwnam("nobody").pw_uid] * 4
        self.wait_for(lambda: proc_ids(self.broker.pid)[0] == want, 5.0,
                      lambda: "uids %r" % (proc_ids(self.broker.pid)[0],))

    def test_files_are_read_as_the_user(self):
        """A password file only root may read stops a start that becomes nobody, naming the
        file: the start reads it as nobody (as a SIGHUP reload would), not as root."""
        if os.geteuid() != 0:
            self.skipTest("needs root to drop privileges")
        d = tempfile.mkdtemp(prefix="starling-user-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        passwd = os.path.join(d, "passwd")
        subprocess.run([os.path.join(BIN, "starling-passwd"), "-c", "-b", passwd, "u", "p"],
                       check=True)
        os.chmod(passwd, 0o600)
        self.broker = Broker(["user nobody", "password_file " + passwd])
        self.assertEqual(self.broker.start_fails(), 1)
        self.assertIn("%s: cannot open: Permission denied" % passwd, self.broker.log_text())
        self.broker.stop()
        os.chmod(passwd, 0o644)
        self.broker = Broker(["user nobody", "password_file " + passwd])
        self.broker.start()
        self.assert_runs_as_nobody()

    def test_memlock_raised_before_the_drop(self):
        """A soft RLIMIT_MEMLOCK too small for 4 rings: root raises it for the user before
        dropping (the user will count every ring's locked memory; root did not)."""
        if os.geteuid() != 0:
            self.skipTest("needs root to drop privileges")
        import resource
        old = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        hard = old[1] if old[1] == resource.RLIM_INFINITY or old[1] >= 4 << 20 else None
        if hard is None:  # 4 workers' rings need about 2.2 MiB
            self.skipTest("the hard RLIMIT_MEMLOCK (%d) is below 4 MiB" % old[1])
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 << 10, hard))
        try:
            # The rings' locked memory is io_uring's: the test names that back-end (the
            # harness keeps a test's own event_backend under make test-epoll).
            self.broker = Broker(["user nobody", "worker_threads 4", "event_backend io_uring"])
            self.broker.start()
        finally:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, old)
        with open("/proc/%d/limits" % self.broker.pid) as f:
            line = [l for l in f if l.startswith("Max locked memory")][0]
        self.assertGreater(int(line.split()[3]), 64 << 10)
        self.assert_runs_as_nobody()
        pub = self.client("pub")
        got = self.collect(self.client("sub"), "m/#")
        for i in range(20):
            self.publish(pub, "m/%d" % i, b"x")
        self.wait_for(lambda: len(got) == 20)

    def test_unknown_user_is_a_config_error(self):
        """A user that does not exist stops the start, naming the file and line."""
        self.broker = Broker(["user no-such-user-for-starling"])
        self.assertEqual(self.broker.start_fails(), 1)
        self.assertRegex(self.broker.log_text(),
                         r"broker\.conf:\d+: user: no such user \"no-such-user-for-starling\"")

    def test_root_without_user_stays_root_with_a_warning(self):
        """No `user` and no `starling` user: a root start keeps root and says so."""
        if os.geteuid() != 0:
            self.skipTest("needs root")
        if user_exists("starling"):
            self.skipTest("a starling user exists here: the broker would become it")
        self.broker = Broker([])
        self.broker.start()
        self.assertEqual(proc_ids(self.broker.pid)[0], [0] * 4)
        self.assertIn('no `user` option and no user "starling"', self.broker.log_text())


@starling_only("Starling's sd_notify")
class NotifyTest(unittest.TestCase):
    """sd_notify's datagrams to a socket the test owns, as systemd's Type=notify reads them."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="starling-notify-")
        os.chmod(self.dir, 0o755)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.notify = NotifySocket(self.dir)
        self.addCleanup(self.notify.close)
        self.broker = None

    def tearDown(self):
        if self.broker is not None:
            self.broker.stop()

    def test_ready_reload_status_stopping(self):
        os.environ["NOTIFY_SOCKET"] = self.notify.path
        try:
            self.broker = Broker([])
            self.broker.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        ready = self.notify.wait("READY=1")
        # Ready means serving: the listener is bound when it is said.
        self.assertTrue(harness._is_listening(self.broker.port, self.broker.pid))
        self.assertIn("STATUS=Listening on port %d" % self.broker.port, ready)
        self.assertIn("0 clients connected", ready)
        os.kill(self.broker.pid, signal.SIGHUP)
        reloading = self.notify.wait("RELOADING=1")
        usec = int(re.search(r"MONOTONIC_USEC=(\d+)", reloading).group(1))
        self.assertLess(abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000), 10_000_000)
        self.assertIn("READY=1", self.notify.wait("READY=1"))
        # A client: the status line says so within its refresh period (5 s).
        c = socket.create_connection(("127.0.0.1", self.broker.port))
        self.addCleanup(c.close)
        c.sendall(harness.encode_connect("notify-client"))
        self.assertIn("STATUS=", self.notify.wait("1 client connected", timeout=12))
        c.close()
        broker, self.broker = self.broker, None
        broker.stop()  # SIGTERM; a clean exit
        self.assertIn("STOPPING=1", self.notify.wait("STOPPING=1"))

    def test_nothing_sent_without_notify_socket(self):
        """Without NOTIFY_SOCKET the broker sends nothing (and starts as usual)."""
        self.assertNotIn("NOTIFY_SOCKET", os.environ)
        self.broker = Broker([])
        self.broker.start()
        os.kill(self.broker.pid, signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "Reload complete." in self.broker.log_text()))
        self.notify.sock.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            self.notify.sock.recv(4096)


if __name__ == "__main__":
    unittest.main()
