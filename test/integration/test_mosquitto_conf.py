"""A Mosquitto user's configuration, run by starlingd (issue 16, part A).

- Debian's own /etc/mosquitto/mosquitto.conf (from Debian's mosquitto package on this machine)
  and a conf.d file, copied into a temporary tree with only the absolute paths moved into it:
  starlingd runs them unchanged, logs to the file they name, writes the pid file, keeps retained
  messages across a restart (persistence true), and reloads the conf.d file's password file on
  SIGHUP.
- include_dir: files in Mosquitto's order (upper case before lower case of a letter), a later
  file's option winning; an error in an included file names that file and line.
- Options Starling cannot honour are refused at start with their reason, file and line;
  deprecated ones are accepted with a notice in the log.
- connection_messages false removes the connect and disconnect lines; log_facility picks the
  syslog facility (observed on a /dev/log of our own, in a private mount namespace).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import BIN, Broker, BrokerTestCase, KIND, free_port, starling_only, unique_id
from test_auth import make_pwfile

DEBIAN_CONF = "/etc/mosquitto/mosquitto.conf"
DEBIAN_CONF_D = "/etc/mosquitto/conf.d"


def rehome(text, root):
    """Debian's file with every absolute path of a setting moved under root (comments kept
    as they are): the only change the tests make to it."""
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            line = re.sub(r"(?<=\s)/", root + "/", line)
        out.append(line)
    return "\n".join(out) + "\n"


class TreeBroker(Broker):
    """A broker started as `starlingd -c ROOT/etc/mosquitto/mosquitto.conf`, where the main
    file is `main` (Debian's file by default, paths moved under ROOT) and conf.d holds
    local.conf (the harness's usual lines: listener, allow_anonymous, worker_threads...) plus
    `files` ({path under ROOT: text}; "{root}" in a text stands for ROOT)."""

    def __init__(self, config_lines=(), main=None, files=None, local_name="local.conf",
                 prepare=None):
        super().__init__(config_lines)
        self.main = main
        self.files = dict(files or {})
        self.local_name = local_name
        self.prepare = prepare  # called with ROOT once the tree is written
        self.root = None

    def _write_config(self):
        self.config_path = os.path.join(self.dir, "broker.conf")
        super()._write_config()  # the harness's lines, to go into conf.d/local.conf
        self.root = os.path.join(self.dir, "root")
        with open(self.config_path) as f:
            local = f.read().replace("{root}", self.root)
        etc = os.path.join(self.root, "etc", "mosquitto")
        for d in ("etc/mosquitto/conf.d", "run/mosquitto", "var/lib/mosquitto",
                  "var/log/mosquitto"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        if self.main is None:
            with open(DEBIAN_CONF) as f:
                main = rehome(f.read(), self.root)
            readme = os.path.join(DEBIAN_CONF_D, "README")
            if os.path.exists(readme):
                shutil.copy(readme, os.path.join(etc, "conf.d", "README"))
        else:
            main = self.main.replace("{root}", self.root)
        with open(os.path.join(etc, "mosquitto.conf"), "w") as f:
            f.write(main)
        if self.local_name:
            with open(os.path.join(etc, "conf.d", self.local_name), "w") as f:
                f.write(local)
        for rel, text in self.files.items():
            path = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text.replace("{root}", self.root))
        self.config_path = os.path.join(etc, "mosquitto.conf")
        if self.prepare:
            self.prepare(self.root)

    def file_log(self):
        """What the broker wrote to Debian's log_dest file."""
        try:
            with open(os.path.join(self.root, "var/log/mosquitto/mosquitto.log")) as f:
                return f.read()
        except OSError:
            return ""


def have_debian_conf():
    return os.path.exists(DEBIAN_CONF)


class TreeCase(BrokerTestCase):
    """A BrokerTestCase whose broker is a TreeBroker built from the class attributes."""
    main = None
    files = {}
    local_name = "local.conf"
    prepare = None  # a function of ROOT run once the tree is written

    def setUp(self):
        if self.main is None and not have_debian_conf():
            self.skipTest("no %s (Debian's mosquitto package)" % DEBIAN_CONF)
        self._teardowns = []
        self.broker = TreeBroker(self.config_lines, main=self.main, files=self.files,
                                 local_name=self.local_name, prepare=self.prepare)
        self.addCleanup(self._shutdown)
        self.broker.start()


@starling_only("the tree is run by starlingd; Mosquitto would drop to its own user")
class DebianConfTest(TreeCase):
    def test_runs_unchanged(self):
        b = self.broker
        with open(DEBIAN_CONF) as f:
            original = f.read()
        with open(b.config_path) as f:
            ours = f.read()
        # Only paths moved: with ROOT taken out again, the file is Debian's byte for byte.
        self.assertEqual(ours.replace(b.root + "/", "/"), original)
        self.assertIn("include_dir %s/etc/mosquitto/conf.d" % b.root, ours)
        sub = self.client()
        got = self.collect(sub, "debian/#", qos=1)
        pub = self.client()
        self.publish(pub, "debian/t", b"hello", qos=1, retain=True)
        self.wait_messages(got, 1)
        # log_dest file: the log went where Debian's file says, with the client's lines.
        self.wait_for(lambda: "New client connected" in b.file_log(), msg="no file log")
        self.assertIn("starlingd starting", b.file_log())
        self.assertNotIn("Notice:", b.file_log())  # nothing in it needed a notice
        # pid_file
        with open(os.path.join(b.root, "run/mosquitto/mosquitto.pid")) as f:
            self.assertEqual(int(f.read().strip()), b.pid)
        # persistence true + persistence_location: the log lives there and keeps the
        # retained message across a restart.
        self.assertTrue(any(n.startswith("starling.db")
                            for n in os.listdir(os.path.join(b.root, "var/lib/mosquitto"))))
        for c in (sub, pub):
            c.disconnect()
            c.loop_stop()
        b.restart()
        again = self.client()
        got = self.collect(again, "debian/#")
        self.wait_messages(got, 1)
        self.assertEqual(got[0].payload, b"hello")
        self.assertTrue(got[0].retain)


@starling_only("Starling's reload message; Mosquitto re-reads the whole configuration")
class ConfDReloadTest(TreeCase):
    """A password file named in a conf.d file is re-read on SIGHUP, as one named in the main
    file is: included files are part of the configuration in every way."""
    config_lines = ("allow_anonymous false", "password_file {root}/etc/mosquitto/passwd")

    @staticmethod
    def prepare(root):
        make_pwfile(os.path.join(root, "etc/mosquitto/passwd"), {"alice": "one"}, "starling")

    def connect(self, user, pw, expect):
        r = self.raw()
        self.assertEqual(r.connect(unique_id("r"), True, 60, username=user,
                                   password=pw).rc, expect)
        return r

    def test_conf_d_password_file_reloaded(self):
        b = self.broker
        alice = self.connect("alice", b"one", 0)
        self.connect("alice", b"two", 5)
        make_pwfile(os.path.join(b.root, "etc/mosquitto/passwd"), {"alice": "two"}, "starling")
        os.kill(b.pid, signal.SIGHUP)
        self.wait_for(lambda: "Reloaded the password and ACL files" in b.file_log(),
                      msg="no reload")
        time.sleep(0.2)  # other workers adopt the new set at their next iteration
        self.connect("alice", b"two", 0)
        self.connect("alice", b"one", 5)
        self.assert_closed(alice)  # her password changed: closed, as Mosquitto 2 does


MAIN_WITH_DIR = """# a main file that includes its conf.d last, as Debian's does
sys_interval 10
include_dir {root}/etc/mosquitto/conf.d
"""


@starling_only("mosquitto 2.0.11 lets a 3.1.1 client keep a keepalive above max_keepalive; "
               "its include order was checked with unknown option names (config_include.c)")
class IncludeOrderTest(TreeCase):
    """mosquitto.conf(5): upper case before lower case of the same letter: A.conf, a.conf,
    B.conf. A byte-order sort would read a.conf last (max_keepalive 300); Mosquitto's order
    reads B.conf last (200): a 3.1.1 client asking for 250 s is refused (CONNACK 2), one
    asking for 150 s is not. max_keepalive is global, so the
    files need no listener of their own."""
    main = MAIN_WITH_DIR
    local_name = "00-local.conf"
    files = {"etc/mosquitto/conf.d/A.conf": "max_keepalive 100\n",
             "etc/mosquitto/conf.d/a.conf": "max_keepalive 300\n",
             "etc/mosquitto/conf.d/B.conf": "max_keepalive 200\n",
             "etc/mosquitto/conf.d/c.conf.disabled": "max_keepalive 1000\n",
             "etc/mosquitto/conf.d/README": "max_keepalive 1000\n"}

    def test_later_file_wins_in_mosquitto_order(self):
        self.assertEqual(self.raw().connect(unique_id("o"), True, 150).rc, 0)
        self.assertEqual(self.raw().connect(unique_id("o"), True, 250).rc, 2,
                         "keepalive 250 accepted: B.conf was not read last")


@starling_only("Starling's error and notice wording (Mosquitto logs its own)")
class ConfErrorsTest(unittest.TestCase):
    """Start-up refusals: each names the file and line and says why."""

    def fails(self, broker):
        self.addCleanup(broker.stop)
        rc = broker.start_fails()
        self.assertNotEqual(rc, None, "the broker kept running")
        self.assertNotEqual(rc, 0)
        return broker.log_text()

    def test_error_in_included_file_names_it(self):
        b = TreeBroker(main=MAIN_WITH_DIR,
                       files={"etc/mosquitto/conf.d/b.conf": "# ok\nmax_keepalive 100\n"
                                                             "max_connection 2\n"})
        text = self.fails(b)
        self.assertIn("%s/etc/mosquitto/conf.d/b.conf:3: unknown option \"max_connection\" "
                      "(included from %s:3)" % (b.root, b.config_path), text)

    def test_listener_of_another_file(self):
        """Mosquitto keeps "the listener above" per file: a listener option at the top of an
        included file is refused rather than applied to another file's listener."""
        b = TreeBroker(main=MAIN_WITH_DIR,
                       files={"etc/mosquitto/conf.d/ws.conf": "protocol websockets\n"})
        text = self.fails(b)
        self.assertIn("%s/etc/mosquitto/conf.d/ws.conf:1: protocol: the listener above this "
                      "line is defined in another file" % b.root, text)

    def test_missing_include_dir(self):
        b = TreeBroker(main="include_dir {root}/nowhere\n")
        text = self.fails(b)
        self.assertIn("%s:1: include_dir: cannot open \"%s/nowhere\"" % (b.config_path,
                                                                        b.root), text)

    def test_refused_options_give_their_reason(self):
        cases = [
            ("plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
             "plugin: Mosquitto plugins are not supported"),
            ("auth_plugin /usr/lib/mosquitto-go-auth.so",
             "auth_plugin: Mosquitto plugins are not supported (Starling does not load "
             "Mosquitto's plugin ABI): use password_file and acl_file"),
            ("plugin_opt_config_file /var/lib/mosquitto/dynamic-security.json",
             "plugin_opt_config_file: an option of a Mosquitto plugin"),
            ("auth_opt_backends files", "auth_opt_backends: an option of a Mosquitto plugin"),
            ("auth_plugin_deny_special_chars true",
             "auth_plugin_deny_special_chars: applies to Mosquitto auth plugins"),
            ("tls_engine pkcs11", "tls_engine: OpenSSL engines (keys in hardware) are not "
                                  "supported: give keyfile a PEM key file"),
            ("tls_engine_kpass_sha1 0123456789abcdef0123456789abcdef01234567",
             "tls_engine_kpass_sha1: OpenSSL engines"),
            ("tls_keyform engine", "tls_keyform: OpenSSL engines"),
            ("dhparamfile /etc/ssl/dh.pem", "dhparamfile: finite-field DHE is not offered"),
            ("log_dest dlt", "log_dest dlt: the automotive Diagnostic Log and Trace"),
            # Bridge options are read now; outside a `connection` block they are an error
            # (test_bridge_config.py has the rest).
            ("topic sensors/# out 1", "topic: a bridge option outside a connection block"),
        ]
        for line, reason in cases:
            with self.subTest(line=line):
                b = Broker(["max_connections 10", line])
                text = self.fails(b)
                # The harness's lines come first: the option is on the last line.
                with open(b.config_path) as f:
                    n = len(f.read().splitlines())
                self.assertIn("%s:%d: %s" % (b.config_path, n, reason), text)
                self.assertEqual(len([l for l in text.splitlines() if reason in l]), 1)


@starling_only("Starling's notice wording")
class DeprecatedAcceptedTest(BrokerTestCase):
    config_lines = ("allow_duplicate_messages false", "retry_interval 20",
                    "websockets_log_level 255", "tls_keyform pem",
                    "retained_persistence false")

    def test_accepted_with_a_notice(self):
        text = self.broker.log_text()
        for word, what in (("allow_duplicate_messages", "deprecated in Mosquitto 2.0"),
                           ("retry_interval", "no longer used by Mosquitto 2.0"),
                           ("websockets_log_level", "libwebsockets"),
                           ("retained_persistence", "older name of persistence")):
            self.assertRegex(text, r"Notice: \S+broker\.conf:\d+: %s.*%s" % (word, what))
        self.assertNotIn("tls_keyform", text)  # pem is what Starling reads: nothing to say
        c = self.client()
        got = self.collect(c, "x/#")
        self.publish(c, "x/1", b"a")
        self.wait_messages(got, 1)


class ConnectionMessagesTest(BrokerTestCase):
    config_lines = ("connection_messages false",)

    def test_no_connect_or_disconnect_lines(self):
        c = self.client("quiet-client")
        got = self.collect(c, "q/#")
        self.publish(c, "q/1", b"x")
        self.wait_messages(got, 1)
        c.disconnect()
        c.loop_stop()
        r = self.raw()
        r.connect("quiet-raw", True, 60)
        r.close()  # without DISCONNECT: a "closed" line where messages are on
        time.sleep(0.3)
        text = self.broker.log_text()
        self.assertNotIn("New client connected", text)
        self.assertNotIn("quiet-client", text)
        self.assertNotIn("quiet-raw", text)
        self.assertIn("Opening", text)  # the log itself still works


class ConnectionMessagesDefaultTest(BrokerTestCase):
    """The control: by default (and with true) both lines are there."""
    config_lines = ("connection_messages true",)

    def test_connect_and_disconnect_lines(self):
        c = self.client("loud-client")
        c.disconnect()
        c.loop_stop()
        self.wait_for(lambda: "loud-client disconnected" in self.broker.log_text())
        self.assertRegex(self.broker.log_text(), r"New client connected .*loud-client")


# --- every option at once ----------------------------------------------------------------

ALL_MAIN = """# every option this build reads, across the main file and two included ones
per_listener_settings false
user root
worker_threads 2
max_inflight_messages 100
max_queued_messages 500
message_size_limit 1000000
max_packet_size 2000000
max_keepalive 3600
retain_available true
max_topic_alias 20
set_tcp_nodelay true
max_output_bytes 8388608
max_output_memory 268435456
client_send_buffer 262144
sys_interval 5
cpu_affinity false
worker_channel_size 1024
max_batch_delay_us 100
log_type error
log_type warning
log_type notice
log_type information
log_dest file {root}/var/log/mosquitto/mosquitto.log
log_dest stderr
log_timestamp true
log_timestamp_format %Y-%m-%dT%H:%M:%S
connection_messages true
log_facility 3
pid_file {root}/run/mosquitto/mosquitto.pid
persistence true
persistence_location {root}/var/lib/mosquitto/
persistence_file starling.db
persistence_sync always
autosave_interval 600
autosave_on_changes false
websockets_headers_size 4096
allow_duplicate_messages false
retry_interval 20
memory_limit 1073741824
max_queued_bytes 10000000
max_inflight_bytes 1000000
max_qos 2
queue_qos0_messages false
upgrade_outgoing_qos false
persistent_client_expiration 1d
allow_zero_length_clientid true
auto_id_prefix auto-
use_username_as_clientid true
clientid_prefixes c
check_retain_source true
include_dir {root}/etc/mosquitto/conf.d
"""

ALL_LISTENERS = """port {port_default}
bind_address 127.0.0.1
socket_domain ipv4
bind_interface lo
listener {port_tls} 127.0.0.1
max_connections 100
certfile {certs}/server.crt
keyfile {certs}/server.key
tls_keyform pem
cafile {certs}/ca.crt
capath {certs}
crlfile {certs}/crl.pem
require_certificate false
use_identity_as_username false
use_subject_as_username false
tls_version tlsv1.2
ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384
ciphers_tls1.3 TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384
listener {port_ws} 127.0.0.1
protocol websockets
websockets_log_level 0
http_dir {{root}}/www
mount_point web/
listener {port_psk} 127.0.0.1
psk_hint starling
metrics_listener {port_metrics} 127.0.0.1
"""

# Two bridges to a port where nothing listens (one with certificates, one with a PSK: a block
# takes one or the other), every bridge option between them.
ALL_BRIDGES = """connection cloud
address 127.0.0.1:{port_bridge} 127.0.0.1:{port_bridge2}
round_robin false
topic sensors/# out 1 site1/ sites/site1/
topic "" both 0 local/status remote/status
remote_clientid site1
local_clientid local.site1
remote_username site1
remote_password pw
local_username alice
local_password pw
cleansession false
local_cleansession true
keepalive_interval 30
start_type automatic
restart_timeout 5 30
idle_timeout 60
threshold 10
bridge_protocol_version mqttv50
try_private true
notifications true
notifications_local_only false
notification_topic bridges/site1/state
bridge_max_packet_size 0
bridge_outgoing_retain true
bridge_attempt_unsubscribe true
bridge_bind_address 127.0.0.1
bridge_cafile {certs}/ca.crt
bridge_capath {certs}
bridge_certfile {certs}/server.crt
bridge_keyfile {certs}/server.key
bridge_insecure true
bridge_tls_version tlsv1.2
bridge_alpn mqtt
bridge_require_ocsp false
connection psk
address 127.0.0.1:{port_bridge}
topic commands/# in 2
bridge_identity site1
bridge_psk deadbeef
"""

ALL_SECURITY = """password_file {root}/etc/mosquitto/passwd
acl_file {root}/etc/mosquitto/acl
psk_file {root}/etc/mosquitto/psk
"""


@starling_only("Starling-only options (max_output_bytes, metrics_listener...) are in it")
class EveryOptionAtOnceTest(TreeCase):
    """Issue 16: a configuration using every supported option at once loads, and clients use
    it (the options of the limits and listener parts included)."""
    main = ALL_MAIN

    def setUp(self):
        import tlscerts
        self.tmp = tempfile.mkdtemp(prefix="starling-allopts-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        certs = tlscerts.Certs(os.path.join(self.tmp, "ca"))
        certs.make_server()
        certs.gencrl()
        tlscerts.run("rehash", certs.dir)
        self.ports = {"port_default": free_port(), "port_tls": free_port(),
                      "port_ws": free_port(), "port_psk": free_port(),
                      "port_metrics": free_port(), "port_bridge": free_port(),
                      "port_bridge2": free_port()}
        self.files = {
            "etc/mosquitto/conf.d/50-listeners.conf":
                ALL_LISTENERS.format(certs=certs.dir, **self.ports),
            "etc/mosquitto/conf.d/60-security.conf": ALL_SECURITY,
            "etc/mosquitto/conf.d/70-bridges.conf":
                ALL_BRIDGES.format(certs=certs.dir, **self.ports),
            "etc/mosquitto/acl": "topic readwrite #\nuser alice\ntopic readwrite #\n",
            "etc/mosquitto/psk": "alice:deadbeef\n",
            "www/index.html": "<p>starling</p>\n",
        }
        super().setUp()

    @staticmethod
    def prepare(root):
        make_pwfile(os.path.join(root, "etc/mosquitto/passwd"), {"alice": "pw"}, "starling")

    def test_loads_and_serves(self):
        from test_install import config_options
        b = self.broker
        text = ALL_MAIN + ALL_LISTENERS + ALL_SECURITY + ALL_BRIDGES
        with open(os.path.join(b.root, "etc/mosquitto/conf.d/local.conf")) as f:
            text += f.read()
        used = set(re.findall(r"(?m)^([a-z0-9_.]+) ", text))
        missing = set(config_options()) - used - OTHER_PARTS
        missing.discard("event_backend")  # the harness sets it only for make test-epoll
        self.assertEqual(sorted(missing), [])
        for name in ("port_default", "port_tls", "port_ws", "port_psk", "port_metrics"):
            self.wait_for(lambda: harness._is_listening(self.ports[name], b.pid),
                          msg="%s not listening" % name)
        c = self.client(username="alice", password="pw")
        got = self.collect(c, "all/#", qos=1)
        self.publish(c, "all/1", b"x", qos=1)
        self.wait_messages(got, 1)
        self.assertIn("Notice:", b.file_log())


# --- the README's table of every mosquitto.conf option -----------------------------------

# Implemented on the limits/identity and listener branches of issue 16 (their tests cover
# them); on a build without them they are still unknown options here.
OTHER_PARTS = {"maximum_qos"}


def readme_options():
    """(names, verdict) for each row of the README's "Every mosquitto.conf option" table."""
    with open(os.path.join(harness.REPO, "README.md")) as f:
        text = f.read()
    table = text[text.index("### Every mosquitto.conf option"):]
    table = table[:table.index("\n## ")]
    rows = []
    for line in table.splitlines():
        m = re.match(r"^\| (.+?) \| (.+) \|$", line)
        if not m or m.group(1).startswith("**") or m.group(1) in ("option", "---"):
            continue
        names = re.findall(r"`([a-z0-9_.*]+)`", m.group(1))
        rows.append((names, m.group(2)))
    return rows


@starling_only("checks the README of Starling against starlingd")
class ReadmeTableTest(unittest.TestCase):
    """Each option of the README's table gets what its row says: a refused one stops the start
    on its own line with a reason naming it, any other is known (at worst its value "1" is
    bad). Without a listener or anything else before it, the option is line 1; line 2 is a
    typo that stops the start wherever line 1 was read without complaint."""

    def first_error(self, name):
        tmp = tempfile.mkdtemp(prefix="starling-readme-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "m.conf")
        with open(conf, "w") as f:
            f.write("%s 1\nzz_not_an_option 1\n" % name.replace("*", "x"))
        p = subprocess.run([os.path.join(BIN, "starlingd"), "-c", conf], capture_output=True,
                           text=True, timeout=30, cwd=tmp)
        self.assertNotEqual(p.returncode, 0)
        return p.stderr.replace(conf, "m.conf")

    def test_every_row_holds(self):
        rows = readme_options()
        names = [n for ns, _ in rows for n in ns]
        self.assertGreaterEqual(len(names), 110)
        for must in ("include_dir", "plugin", "tls_engine", "connection_messages",
                     "log_facility", "websockets_log_level", "bridge_psk", "dhparamfile"):
            self.assertIn(must, names)
        # The manual of the installed mosquitto, where there is one: every option it
        # describes has a row.
        man = "/usr/share/man/man5/mosquitto.conf.5.gz"
        if os.path.exists(man):
            import gzip
            with gzip.open(man, "rt", errors="replace") as f:
                described = set(n.replace("\\&", "") for n in re.findall(
                    r"(?m)^\.PP\n\\fB([a-z0-9_\\&.]+)\\fR.*\n\.RS 4", f.read()))
            self.assertGreaterEqual(len(described), 100)
            self.assertEqual(sorted(described - set(names)), [])
        for ns, verdict in rows:
            for name in ns:
                if name in OTHER_PARTS:
                    continue
                with self.subTest(option=name):
                    err = self.first_error(name)
                    if verdict.startswith("refused"):
                        self.assertRegex(err, r"m\.conf:1: %s( [a-z]+)?: .{20,}"
                                         % re.escape(name.replace("*", "x")))
                        self.assertNotIn("unknown option", err)
                    else:
                        self.assertNotIn("m.conf:1: unknown option", err)


# --- syslog ----------------------------------------------------------------------------------

def can_unshare():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=10)
    return r.returncode == 0


class SyslogBroker(Broker):
    """starlingd in a private mount namespace whose /dev holds our own /dev/log (a datagram
    socket this test reads) next to the real null, zero, random and urandom."""

    def __init__(self, config_lines, devdir):
        super().__init__(config_lines)
        self.devdir = devdir

    def command(self):
        real = self.devdir + ".real"
        script = ("set -e; mkdir -p {real}; mount --bind /dev {real}; "
                  "for n in null zero random urandom; do touch {dev}/$n; "
                  "mount --bind {real}/$n {dev}/$n; done; "
                  "mount --rbind {dev} /dev; exec \"$@\"").format(real=real, dev=self.devdir)
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                "sh"] + super().command()


@starling_only("syslog through a /dev/log of our own")
@unittest.skipUnless(can_unshare(), "needs root and unshare -m to give starlingd its own "
                                    "/dev/log; syslog cannot be observed otherwise here")
class LogFacilityTest(unittest.TestCase):
    def run_with(self, lines):
        tmp = tempfile.mkdtemp(prefix="starling-syslog-")
        self.addCleanup(shutil.rmtree, tmp, True)
        devdir = os.path.join(tmp, "dev")
        os.mkdir(devdir)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(os.path.join(devdir, "log"))
        os.chmod(os.path.join(devdir, "log"), 0o666)
        sock.settimeout(5)
        b = SyslogBroker(["log_dest syslog"] + lines, devdir)
        b.start()
        self.addCleanup(b.stop)
        got = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                msg = sock.recv(65536).decode("utf-8", "replace")
            except socket.timeout:
                break
            got.append(msg)
            if "Opening" in msg:
                break
        return got

    def pri_of(self, got, text):
        for m in got:
            if text in m:
                return int(m[1:m.index(">")])
        self.fail("no syslog message with %r in %r" % (text, got))

    def test_default_facility_is_daemon(self):
        got = self.run_with([])
        self.assertEqual(self.pri_of(got, "starlingd starting"), 3 * 8 + 5)  # daemon.notice
        self.assertIn("starlingd[", [m for m in got if "starting" in m][0])

    def test_log_facility_5_is_local5(self):
        got = self.run_with(["log_facility 5"])
        self.assertEqual(self.pri_of(got, "starlingd starting"), (16 + 5) * 8 + 5)
        self.assertEqual(self.pri_of(got, "Opening"), (16 + 5) * 8 + 5)


if __name__ == "__main__":
    unittest.main()
