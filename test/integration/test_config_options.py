"""Configuration options seen from clients: max_connections, max_keepalive for 3.1.1 clients,
set_tcp_nodelay (read from the broker's own socket), port/bind_address, and the $SYS topics
sys_interval publishes. Mosquitto has the same options, so these run against both brokers."""

import ctypes
import os
import socket
import subprocess
import tempfile
import time
import unittest

import harness
from harness import (BIN, CONNACK, KIND, MOSQUITTO, BrokerTestCase, RawClient, encode_connect,
                     free_port, starling_only, unique_id)

SYS_PIDFD_GETFD = 438


def broker_socket_for(pid, broker_port, client_port):
    """The broker's end of our connection, duplicated into this process (pidfd_getfd)."""
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            local, remote = cols[1], cols[2]
            if (int(local.split(":")[1], 16) == broker_port and
                    int(remote.split(":")[1], 16) == client_port):
                inode = cols[9]
    if inode is None:
        return None
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                break
        except OSError:
            continue
    else:
        return None
    pidfd = os.pidfd_open(pid)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        dup = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(fd), 0)
        if dup < 0:
            return None
        return socket.socket(fileno=dup)
    finally:
        os.close(pidfd)


class MaxConnectionsTest(BrokerTestCase):
    config_lines = ("max_connections 3",)

    def test_connection_past_the_limit_is_refused(self):
        held = [RawClient(self.broker.port) for _ in range(3)]
        for i, r in enumerate(held):
            self.defer(r.close)
            r.send(encode_connect(unique_id("mc%d-" % i)))
            self.assertEqual(r.recv(3).type, CONNACK)
        extra = RawClient(self.broker.port)
        self.defer(extra.close)
        extra.send(encode_connect(unique_id("mcx-")))
        self.assert_closed(extra)
        # A place freed is a place to take.
        held[0].close()
        time.sleep(0.3)
        again = RawClient(self.broker.port)
        self.defer(again.close)
        again.send(encode_connect(unique_id("mcy-")))
        self.assertEqual(again.recv(3).type, CONNACK)


class MaxKeepaliveTest(BrokerTestCase):
    config_lines = ("max_keepalive 10",)

    @starling_only("Mosquitto 2.0.11 accepts the longer keep alive, although mosquitto.conf(5) "
                   "says such a client gets CONNACK 'identifier rejected'; Starling does what "
                   "the manual says")
    def test_three_one_one_client_asking_more_is_refused(self):
        # 3.1.1 has no Server Keep Alive: a client asking for more than max_keepalive gets
        # CONNACK 0x02, as Mosquitto 2 does (mosquitto.conf(5), max_keepalive).
        r = RawClient(self.broker.port)
        self.defer(r.close)
        r.send(encode_connect(unique_id("mk-"), keepalive=60))
        p = r.recv(3)
        self.assertEqual((p.type, p.rc), (CONNACK, 0x02))
        ok = RawClient(self.broker.port)
        self.defer(ok.close)
        ok.send(encode_connect(unique_id("mk-"), keepalive=5))
        p = ok.recv(3)
        self.assertEqual((p.type, p.rc), (CONNACK, 0))


class NodelayTest(unittest.TestCase):
    """TCP_NODELAY as the broker set it on its end of a client's connection."""

    def nodelay_with(self, lines):
        with harness.Broker(config_lines=lines) as b:
            c = socket.create_connection(("127.0.0.1", b.port))
            try:
                c.sendall(encode_connect(unique_id("nd-")))
                c.recv(4)
                s = broker_socket_for(b.pid, b.port, c.getsockname()[1])
                self.assertIsNotNone(s, "broker socket not found")
                with s:
                    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            finally:
                c.close()

    def test_set_tcp_nodelay(self):
        self.assertTrue(self.nodelay_with(["set_tcp_nodelay true"]))
        self.assertFalse(self.nodelay_with(["set_tcp_nodelay false"]))
        # Starling's default is on (Mosquitto's is off).
        self.assertEqual(self.nodelay_with([]), KIND == "starling")


class BindAddressTest(unittest.TestCase):
    def test_port_and_bind_address(self):
        port = free_port()
        d = tempfile.mkdtemp(prefix="starling-bind-")
        conf = os.path.join(d, "b.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind_address 127.0.0.1\nallow_anonymous true\n" % port)
        binary = MOSQUITTO if KIND == "mosquitto" else os.path.join(BIN, "starlingd")
        p = subprocess.Popen([binary, "-c", conf], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=d)
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.02)
            else:
                self.fail("not listening on 127.0.0.1:%d" % port)
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.2", port), timeout=0.5).close()
        finally:
            p.terminate()
            self.assertEqual(p.wait(timeout=10), 0)


class SysTopicsTest(BrokerTestCase):
    config_lines = ("sys_interval 1",)

    def test_sys_broker_topics(self):
        sub = self.client()
        got = self.collect(sub, "$SYS/broker/#", 0)

        def value(topic):
            for m in reversed(got.snapshot()):
                if m.topic == topic:
                    return m.payload
            return None

        self.wait_for(lambda: value("$SYS/broker/version") is not None)
        self.wait_for(lambda: value("$SYS/broker/uptime") is not None)
        self.assertTrue(value("$SYS/broker/uptime").endswith(b" seconds"))
        # Our subscriber is connected: the count says so within a round or two.
        self.wait_for(lambda: (value("$SYS/broker/clients/connected") or b"0") >= b"1", 3.5)
        # '#' alone does not match $SYS topics [MQTT-4.7.2-1].
        plain = self.collect(self.client(), "#", 0)
        time.sleep(1.5)
        self.assertEqual([m.topic for m in plain.snapshot() if m.topic.startswith("$")], [])


if __name__ == "__main__":
    unittest.main()
