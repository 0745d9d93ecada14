"""A real browser on a WebSocket listener: headless Chromium runs MQTT.js in a page.

The page (browser/page.html) connects to the broker with MQTT.js over ws:// (and wss://),
subscribes, announces itself with its user agent on TOPIC/ready, shows each message it gets on
TOPIC and publishes it back on TOPIC/echo, where the test, subscribed over TCP, reads it after
`starling-pub` published it. Debian's node-mqtt ships no browser bundle, so the test builds one
with Debian's esbuild from /usr/share/nodejs (with node-buffer and node-process standing in for
Node's Buffer and process); the page and the bundle are served by Python's http.server on
127.0.0.1. Skipped, with the reason, where Chromium, esbuild or those modules are missing.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from harness import KIND, free_port, tool, unique_id
import test_websockets as tw  # its classes stay out of this module's namespace: run once
from tlscerts import Certs

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "browser")
NODE_MODULES = "/usr/share/nodejs"
CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "")
                 if p and os.access(p, os.X_OK)), None)
ESBUILD = shutil.which("esbuild")
PAGE_TIMEOUT_S = 45  # Chromium's start under ASan brokers and a loaded machine


def missing():
    if KIND == "mosquitto":
        return "Starling's WebSocket listener"
    if not CHROMIUM:
        return "Chromium is not installed (Debian's chromium)"
    if not ESBUILD:
        return "esbuild is not installed (Debian's esbuild builds the MQTT.js browser bundle)"
    for m in ("mqtt", "buffer", "process"):
        if not os.path.isdir(os.path.join(NODE_MODULES, m)):
            return "%s is missing from %s (node-%s)" % (m, NODE_MODULES, m)
    return None


def build_site(directory):
    """The page and MQTT.js bundled for a browser, in directory."""
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    subprocess.run(
        [ESBUILD, os.path.join(BROWSER_DIR, "mqtt_entry.js"), "--bundle", "--platform=browser",
         "--format=iife", "--inject:" + os.path.join(BROWSER_DIR, "mqtt_shim.js"),
         "--define:global=window", "--alias:ws=" + os.path.join(BROWSER_DIR, "ws_stub.js"),
         "--log-level=warning", "--outfile=" + os.path.join(directory, "mqtt.browser.js")],
        check=True, env=env, timeout=120, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    shutil.copy(os.path.join(BROWSER_DIR, "page.html"), directory)


class BrowserMixin:
    """A site (page + bundle) served over HTTP for the class; Chromium per test."""

    @classmethod
    def start_site(cls):
        cls.site = tempfile.mkdtemp(prefix="starling-browser-")
        build_site(cls.site)
        cls.http = None
        for _ in range(3):
            cls.http_port = free_port()
            cls.http = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(cls.http_port), "--bind", "127.0.0.1",
                 "--directory", cls.site], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            if cls.http.poll() is None:
                return
        raise AssertionError("http.server did not start")

    @classmethod
    def stop_site(cls):
        if cls.http is not None and cls.http.poll() is None:
            os.kill(cls.http.pid, signal.SIGTERM)
            cls.http.wait(timeout=5)
        shutil.rmtree(cls.site, ignore_errors=True)

    def chromium(self, ws_url, topic, extra=()):
        profile = tempfile.mkdtemp(prefix="starling-chromium-")
        url = "http://127.0.0.1:%d/page.html?url=%s&topic=%s" % (self.http_port, ws_url, topic)
        p = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--user-data-dir=" + profile] + list(extra) + [url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            # SIGTERM lets Chromium take its renderer and zygote processes down with it.
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
            shutil.rmtree(profile, ignore_errors=True)
        self.defer(stop)
        return p

    def round_trip(self, ws_url, extra=()):
        topic = "browser/" + unique_id("t")
        tcp = self.client()
        ready = self.collect(tcp, topic + "/ready", 1)
        echo = self.collect(tcp, topic + "/echo", 1)
        self.chromium(ws_url, topic, extra)
        self.wait_messages(ready, 1, timeout=PAGE_TIMEOUT_S)
        self.assertIn(b"Chrome", ready[0].payload)
        subprocess.run([tool("starling-pub"), "-h", "127.0.0.1", "-p", str(self.broker.port),
                        "-t", topic, "-q", "1", "-m", "hello from starling-pub"], check=True,
                       timeout=10)
        self.wait_messages(echo, 1, timeout=15)
        self.assertEqual(echo[0].payload, b"browser got: hello from starling-pub")


@unittest.skipIf(missing(), missing())
class BrowserTest(BrowserMixin, tw.WsCase):
    @classmethod
    def setUpClass(cls):
        cls.start_site()

    @classmethod
    def tearDownClass(cls):
        cls.stop_site()

    def test_chromium_mqttjs_over_ws(self):
        self.round_trip("ws://127.0.0.1:%d/mqtt" % self.ws.port)


@unittest.skipIf(missing(), missing())
class BrowserWssTest(BrowserMixin, tw.WsCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="starling-wss-")
        cls.certs = Certs(os.path.join(cls.tmp, "ca"))
        cls.certs.make_server("IP:127.0.0.1,DNS:localhost")
        cls.start_site()

    @classmethod
    def tearDownClass(cls):
        cls.stop_site()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.ws_lines = ("certfile " + self.certs.server, "keyfile " + self.certs.server_key)
        super().setUp()

    def test_chromium_mqttjs_over_wss(self):
        # The test CA is not in Chromium's store; the certificate itself is what test_tls
        # checks, this is about the WebSocket over TLS.
        self.round_trip("wss://127.0.0.1:%d/mqtt" % self.ws.port,
                        extra=("--ignore-certificate-errors",))


if __name__ == "__main__":
    unittest.main()
