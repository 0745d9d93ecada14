#!/usr/bin/python3
"""Runs the integration suite: every test_*.py beside this file, a few modules at a time.

    run.py [--bin DIR] [--broker starling|mosquitto] [--workers N] [--slices K/M]
           [-k PATTERN] [-j N] [-v] [MODULE...]

Each module runs in its own child process (each test starts its own broker on its own port, so
modules are independent); at most -j of them at once (default 3: the tests mostly wait on
sockets, and the machine has 2 cores). A child that outlives its time limit is killed by PID and
counted as failed. Ends with "integration: N passed, F failed, S skipped in T s" and exits
non-zero if anything failed or errored, or if no test ran at all.

--workers N starts every Starling broker with `worker_threads N`. --slices K/M confines this run
to the K-th of M disjoint groups of port slices, so that M runs at once (make test runs the
suite on 1 and on 4 workers side by side) never share a port.
"""

import argparse
import glob
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402  (takes --bin/--broker out of sys.argv and exports them)

CHILD_TIMEOUT_S = 300
# Rough run time of each module, heaviest first, so the long ones do not start last.
WEIGHTS = {"test_workers": 10, "test_persist": 10, "test_persist_inflight": 10,
           "test_persist_crash": 8, "test_scale": 9, "test_keepalive": 8, "test_will": 8, "test_tls": 7,
           "test_session": 6, "test_qos": 6, "test_real_clients": 6, "test_tools": 6,
           "test_malformed": 5, "test_bridge_mosquitto": 7, "test_cluster": 9,
           "test_cluster_faults": 8}


# --- child: run one module -------------------------------------------------------------------
class CountingResult(unittest.TextTestResult):
    """Counts tests, not sub-tests: a test with any failing sub-test is one failure."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.outcome = {}  # test id -> "passed" | "failed" | "skipped"
        self.skip_reasons = []

    def _mark(self, test, status):
        tid = test.id()
        if status == "failed" or tid not in self.outcome or self.outcome[tid] == "passed":
            self.outcome[tid] = status

    def addSuccess(self, test):
        super().addSuccess(test)
        self._mark(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._mark(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        # Errors in setUpClass/module fixtures arrive as _ErrorHolder "tests".
        self._mark(test, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._mark(test, "skipped")
        self.skip_reasons.append((test.id(), reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._mark(test, "passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._mark(test, "failed")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._mark(test, "failed")


def run_child(module, patterns, verbose, result_path):
    loader = unittest.TestLoader()
    if patterns:
        loader.testNamePatterns = ["*%s*" % p if "*" not in p else p for p in patterns]
    start = time.monotonic()
    try:
        suite = loader.loadTestsFromName(module)
    except Exception as e:  # an import error is a failure of the module, not a crash
        counts = {"passed": 0, "failed": 1, "skipped": 0, "skips": [],
                  "time": 0.0, "error": "cannot load %s: %r" % (module, e)}
        print(counts["error"], file=sys.stderr)
    else:
        runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2 if verbose else 1,
                                         resultclass=CountingResult)
        result = runner.run(suite)
        statuses = list(result.outcome.values())
        counts = {"passed": statuses.count("passed"), "failed": statuses.count("failed"),
                  "skipped": statuses.count("skipped"), "skips": result.skip_reasons,
                  "time": time.monotonic() - start}
    with open(result_path, "w") as f:
        json.dump(counts, f)
    return 0 if counts["failed"] == 0 else 1


# --- parent: schedule the modules -------------------------------------------------------------
def discover(names):
    found = sorted(os.path.splitext(os.path.basename(p))[0]
                   for p in glob.glob(os.path.join(HERE, "test_*.py")))
    if names:
        wanted = [os.path.splitext(os.path.basename(n))[0] for n in names]
        missing = [n for n in wanted if n not in found]
        if missing:
            sys.exit("run.py: no such test module: %s" % ", ".join(missing))
        found = wanted
    return sorted(found, key=lambda m: -WEIGHTS.get(m, 4))


class Child:
    def __init__(self, module, args, tmpdir, port_base):
        self.module = module
        self.result_path = os.path.join(tmpdir, module + ".json")
        self.log_path = os.path.join(tmpdir, module + ".log")
        cmd = [harness.PYTHON, os.path.abspath(__file__), "--child", module,
               "--result", self.result_path]
        for p in args.k or ():
            cmd += ["-k", p]
        if args.verbose:
            cmd.append("-v")
        self.log = open(self.log_path, "wb")
        self.start = time.monotonic()
        env = dict(os.environ)
        env["STARLING_PORT_BASE"] = str(port_base)
        self.proc = subprocess.Popen(cmd, cwd=HERE, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self.timed_out = False

    def poll(self):
        if self.proc.poll() is None and time.monotonic() - self.start > CHILD_TIMEOUT_S:
            self.timed_out = True
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()
        return self.proc.poll()

    def finish(self):
        self.log.close()
        try:
            with open(self.result_path) as f:
                counts = json.load(f)
        except (OSError, ValueError):
            counts = {"passed": 0, "failed": 1, "skipped": 0, "skips": []}
            counts["error"] = ("killed after %d s" % CHILD_TIMEOUT_S if self.timed_out
                               else "exited %s without a result" % self.proc.returncode)
        counts["time"] = time.monotonic() - self.start
        with open(self.log_path, "rb") as f:
            counts["output"] = f.read().decode("utf-8", "replace")
        return counts

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait()


def run_parent(args):
    modules = discover(args.modules)
    print("integration: %s broker%s, binaries %s, %d modules, %d at a time"
          % (harness.KIND, " (%d workers)" % harness.WORKERS if harness.WORKERS else "",
             harness.BIN, len(modules), args.jobs), flush=True)
    start = time.monotonic()
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    skips = []
    pending = list(modules)
    running = []
    # Two run.py at once (two checkouts) most likely get different slices; runs started
    # together with --slices K/M certainly do.
    group, ngroups = args.slices
    per_group = harness.PORT_SLICES // ngroups
    # A slice is lent to one running module at a time and returned when it ends: slices chosen
    # by position would wrap (more modules than slices) and put a long module and a later one
    # on the same ports, where their brokers (SO_REUSEPORT) could take each other's clients.
    first = random.randrange(per_group)
    free_slices = [group * per_group + (first + k) % per_group for k in range(per_group)]
    with tempfile.TemporaryDirectory(prefix="starling-run-") as tmpdir:
        try:
            while pending or running:
                while pending and len(running) < min(args.jobs, per_group):
                    # Each module gets its own slice of broker ports (see harness.free_port).
                    child = Child(pending.pop(0), args, tmpdir,
                                  harness.PORT_LOW + harness.PORT_SLICE * free_slices[0])
                    child.slice = free_slices.pop(0)
                    running.append(child)
                for child in list(running):
                    if child.poll() is None:
                        continue
                    running.remove(child)
                    free_slices.append(child.slice)
                    report(child.module, child.finish(), totals, skips, args.verbose)
                time.sleep(0.05)
        finally:
            for child in running:
                child.kill()
    if skips:
        print("skipped:")
        for tid, reason in sorted(skips):
            print("  %s: %s" % (tid, reason))
    elapsed = time.monotonic() - start
    print("integration%s: %d passed, %d failed, %d skipped in %.1f s"
          % (" (%d workers)" % harness.WORKERS if harness.WORKERS else "",
             totals["passed"], totals["failed"], totals["skipped"], elapsed), flush=True)
    if totals["failed"]:
        return 1
    if totals["passed"] + totals["skipped"] == 0:
        print("integration: no test ran", flush=True)
        return 1
    return 0


def report(module, counts, totals, skips, verbose):
    for key in totals:
        totals[key] += counts[key]
    skips.extend(counts.get("skips", []))
    n = counts["passed"] + counts["failed"] + counts["skipped"]
    if n or counts.get("error"):
        print("  %-22s %3d passed, %d failed, %d skipped (%.1f s)%s"
              % (module, counts["passed"], counts["failed"], counts["skipped"], counts["time"],
                 "  " + counts["error"] if counts.get("error") else ""), flush=True)
    if counts["failed"] or verbose:
        print(counts["output"].rstrip(), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", action="append", metavar="PATTERN",
                    help="only tests whose id contains PATTERN (unittest -k semantics)")
    ap.add_argument("-j", "--jobs", type=int, default=3, help="modules run at once (1-4)")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--slices", default="0/1", metavar="K/M",
                    help="use the K-th of M disjoint groups of port slices")
    ap.add_argument("modules", nargs="*", help="test modules (default: all test_*.py)")
    args = ap.parse_args()
    try:
        k, m = (int(x) for x in args.slices.split("/"))
        if not 0 <= k < m <= harness.PORT_SLICES:
            raise ValueError
    except ValueError:
        ap.error("--slices must be K/M with 0 <= K < M <= %d" % harness.PORT_SLICES)
    args.slices = (k, m)
    args.jobs = max(1, min(4, args.jobs))
    if args.child:
        return run_child(args.child, args.k, args.verbose, args.result)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
