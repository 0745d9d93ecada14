#!/usr/bin/python3
"""Aggregates starling-bench JSON lines from bench/compare.sh into tables, a summary and a chart.

Each line of a results file is one run: starling-bench's JSON output, whose "label" carries
phase (sat, lat or rate), scenario id, broker variant, repeat and, for the fixed-rate pass, the
deliveries/s target; fixed-rate runs also carry "broker_tcp" (bench/tcp_segs.py). A line
{"meta": {...}} says what was measured with what. Figures are medians over repeats.

  aggregate.py oneline < line          a short summary of one run (compare.sh's progress)
  aggregate.py rates RESULTS           per scenario, the fixed publish rate of the latency pass:
                                       half of Mosquitto's median saturation delivered/s,
                                       divided by the scenario's fan-out
  aggregate.py fan RESULTS SCENARIO    the median fan-out of SCENARIO's saturation runs
  aggregate.py attach SEGS < line      the line with tcp_segs.py's output added as "broker_tcp"
                                       (and deliveries per segment)
  aggregate.py persist BEFORE AFTER < line
                                       the line with the differences of the broker's
                                       $SYS/broker/persistence counters (JSON objects from
                                       bench/sysread.py) added as "persist", with messages per
                                       fsync and fsyncs per second
  aggregate.py report RESULTS [--chart PNG] [--summary JSON] [--machine TEXT]
                                       markdown tables on stdout, summary JSON, PNG chart

Ratios are Starling / FlashMQ first (S/F1: FlashMQ on one thread, S/F: with its default thread
count), then Starling / Mosquitto (S/M): above 1 is better for delivered/s, below 1 is better
for CPU per message, latency and memory.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

BENCH_CPU_LIMIT = 90.0  # percent: above this the generator may be what limits the run
BROKER_BUSY_MIN = 80.0  # percent: below this a saturation run did not saturate the broker
HELD_MIN = 0.95  # a fixed-rate run held its target if it delivered this share of it
# Every variant compare.sh knows, in table order, with its short name in the tables.
# starling-bN: Starling with a batching budget of N us (max_batch_delay_us).
# *-acl: with the password file and ACL of bench/gen-acl.py.
# *-persist: persistence on (Sp: persistence_sync always, Spn: never; Mp: Mosquitto's).
# starling-epoll (Se): the epoll back-end; starling-alt (Sa): another build (--alt-bin).
VARIANTS = ("starling", "starling-epoll", "starling-alt", "starling-b100", "starling-b1000",
            "starling-acl", "starling-persist", "starling-persist-never", "flashmq-1t", "flashmq", "mosquitto", "mosquitto-acl",
            "mosquitto-persist", "flashmq-nagle", "mosquitto-nagle")
SHORT = {"starling": "S", "starling-epoll": "Se", "starling-alt": "Sa", "starling-b100": "S100", "starling-b1000": "S1000",
         "starling-acl": "Sacl", "starling-persist": "Sp", "starling-persist-never": "Spn",
         "flashmq-1t": "F1", "flashmq": "F", "mosquitto": "M", "mosquitto-acl": "Macl",
         "mosquitto-persist": "Mp", "flashmq-nagle": "Fn", "mosquitto-nagle": "Mn"}
TITLE = {"starling": "Starling", "starling-epoll": "Starling-epoll",
         "starling-alt": "Starling-alt-build", "starling-b100": "Starling-100us",
         "starling-b1000": "Starling-1ms", "starling-acl": "Starling-ACL",
         "starling-persist": "Starling-persist-sync", "starling-persist-never":
         "Starling-persist-nosync", "flashmq-1t": "FlashMQ-1-thread",
         "flashmq": "FlashMQ-default-threads", "mosquitto": "Mosquitto",
         "mosquitto-acl": "Mosquitto-ACL", "mosquitto-persist": "Mosquitto-persist",
         "flashmq-nagle": "FlashMQ-Nagle", "mosquitto-nagle": "Mosquitto-Nagle"}
NODELAY = ("starling", "starling-epoll", "starling-alt", "starling-b100", "starling-b1000", "starling-persist",
           "starling-persist-never", "flashmq-1t", "flashmq", "mosquitto", "mosquitto-persist")
PERSIST_VARIANTS = ("starling-persist", "starling-persist-never")
NAGLE = ("starling", "flashmq-nagle", "mosquitto-nagle")


def parse_label(label):
    fields = {}
    for part in (label or "").split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            fields[key] = value
    return fields


def load(path):
    """(runs, meta): every run's JSON object with its label's fields as _phase, _scenario..."""
    runs, meta = [], {}
    with open(path, encoding="utf-8") as f:
        for text in f:
            text = text.strip()
            if not text.startswith("{"):
                continue
            try:
                run = json.loads(text)
            except json.JSONDecodeError:
                continue
            if "meta" in run:
                meta = run["meta"]
                continue
            run.update({"_" + k: v for k, v in parse_label(run.get("label")).items()})
            runs.append(run)
    return runs, meta


def si(value):
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def oneline(line):
    try:
        run = json.loads(line)
    except json.JSONDecodeError:
        return "FAILED: no JSON from starling-bench"
    if not run.get("ok"):
        return "FAILED: " + str(run.get("error", "invalid payloads"))
    broker = run.get("broker", {})
    if run.get("scenario") == "connections":
        rss_mib = broker.get("rss_kb", 0) / 1024
        return (f"{run['connections']} connections, broker RSS {rss_mib:.1f} MiB, "
                f"{broker.get('rss_per_conn_bytes', 0):.0f} B per connection")
    tcp = run.get("broker_tcp", {})
    per_seg = f", {tcp['deliveries_per_seg']:.1f}/segment" if tcp.get("deliveries_per_seg") else ""
    persist = run.get("persist")
    disk = ""
    if persist is not None:
        disk = (f", {persist['msgs_per_fsync']:.1f} msgs/fsync, "
                f"{persist['fsyncs_per_s']:.0f} fsyncs/s" if persist.get("msgs_per_fsync")
                else ", no $SYS persistence counters" if persist.get("absent") else "")
    return (f"delivered {si(run['delivered_per_s'])}/s, "
            f"broker {broker.get('cpu_us_per_msg', 0):.3f} us/msg{per_seg}, "
            f"p50 {run['latency_us']['p50']:.0f} p99 {run['latency_us']['p99']:.0f} us, "
            f"loss {run['loss']}, bench cpu {run['bench']['cpu_pct']:.0f}%{disk}")


def attach(segs_path, line):
    """The run's JSON line with the segment sampler's figures as "broker_tcp"."""
    try:
        run = json.loads(line)
        with open(segs_path, encoding="utf-8") as f:
            tcp = json.load(f)
    except (OSError, json.JSONDecodeError):
        return line  # a failed run's line, or no sample: kept as it is
    if run.get("ok") and tcp.get("segs_per_s"):
        tcp["deliveries_per_seg"] = run["delivered_per_s"] / tcp["segs_per_s"]
    if run.get("ok") and tcp.get("cpu_per_s") is not None and run.get("delivered_per_s"):
        tcp["cpu_us_per_msg"] = tcp["cpu_per_s"] * 1e6 / run["delivered_per_s"]
    run["broker_tcp"] = tcp
    return json.dumps(run, separators=(",", ":"))


def persist(before, after, line):
    """The run's JSON line with the broker's persistence counters over the run as "persist":
    commits (fsyncs completed), records and bytes appended between the two readings (taken
    before the bench started and after it ended, so set-up and the clean connects count too),
    messages published per fsync, and fsyncs per second of publishing (sent_total at the
    window's rate). {"absent": true} when the broker published no such counters."""
    try:
        run = json.loads(line)
        b, a = json.loads(before or "{}"), json.loads(after or "{}")
    except json.JSONDecodeError:
        return line
    keys = ("commits", "records", "bytes")
    if not all(isinstance(a.get(k), (int, float)) for k in keys):
        run["persist"] = {"absent": True}
        return json.dumps(run, separators=(",", ":"))
    p = {k: a[k] - (b.get(k, 0) if isinstance(b.get(k), (int, float)) else 0) for k in keys}
    sent = run.get("sent_total", 0)
    seconds = sent / run["sent_per_s"] if run.get("sent_per_s") else None
    p["messages"] = sent
    p["msgs_per_fsync"] = sent / p["commits"] if p["commits"] else None
    p["fsyncs_per_s"] = p["commits"] / seconds if seconds else None
    p["records_per_msg"] = p["records"] / sent if sent else None
    p["bytes_per_msg"] = p["bytes"] / sent if sent else None
    run["persist"] = p
    return json.dumps(run, separators=(",", ":"))


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def phase_of(run):
    """The phase a run is grouped under: sat, lat, or rate-TARGET."""
    phase = run.get("_phase")
    return f"{phase}-{run['_target']}" if run.get("_target") else phase


def group(runs):
    """(phase, scenario, broker) -> successful runs."""
    groups = {}
    for run in runs:
        if run.get("ok"):
            key = (phase_of(run), run.get("_scenario"), run.get("_broker"))
            groups.setdefault(key, []).append(run)
    return groups


def figures(groups, phase, scenario, broker):
    runs = groups.get((phase, scenario, broker), [])
    if not runs:
        return None
    b = [r.get("broker", {}) for r in runs]
    tcp = [r.get("broker_tcp", {}) for r in runs]
    target = runs[0].get("_target")
    delivered = median([r["delivered_per_s"] for r in runs])
    # No latency without a message of the window delivered (a broker far behind its rate).
    lat = [r["latency_us"] if r["latency_us"].get("count", 1) else {} for r in runs]
    return {
        "runs": len(runs),
        "target_per_s": int(target) if target else None,
        "delivered_per_s": delivered,
        "delivered_min_per_s": min(r["delivered_per_s"] for r in runs),
        "sent_per_s": median([r["sent_per_s"] for r in runs]),
        "fan": median([r["fan"] for r in runs]),
        "cpu_us_per_msg": median([x.get("cpu_us_per_msg") for x in b]),
        # Fixed-rate runs: from schedstat over the steady intervals (tcp_segs.py), in ns.
        "cpu_us_per_msg_sched": median([t.get("cpu_us_per_msg") for t in tcp]),
        "p50_us": median([x.get("p50") for x in lat]),
        "p99_us": median([x.get("p99") for x in lat]),
        "rss_mib": median([x.get("rss_kb", 0) / 1024 for x in b]),
        "rss_per_conn_bytes": median([x.get("rss_per_conn_bytes") for x in b]),
        "loss": sum(r["loss"] for r in runs),
        "bench_cpu_pct": median([r["bench"]["cpu_pct"] for r in runs]),
        "bench_cpu_pct_max": max(r["bench"]["cpu_pct"] for r in runs),
        "bench_msgs_per_send": median([r["bench"].get("msgs_per_send") for r in runs]),
        "deliveries_per_seg": median([t.get("deliveries_per_seg") for t in tcp]),
        "bytes_per_seg": median([t.get("bytes_per_seg") for t in tcp]),
        # Share of a core the broker used during the window (fixed rates: schedstat's).
        "broker_busy_pct": median([100 * t["cpu_per_s"] if t.get("cpu_per_s") is not None else
                                   x.get("cpu_us_per_msg", 0) * r["delivered_per_s"] / 1e4
                                   for x, r, t in zip(b, runs, tcp)]),
        # Persistence ($SYS counters over the run, starling-persist*): see persist().
        "msgs_per_fsync": median([r.get("persist", {}).get("msgs_per_fsync") for r in runs]),
        "fsyncs_per_s": median([r.get("persist", {}).get("fsyncs_per_s") for r in runs]),
        "records_per_msg": median([r.get("persist", {}).get("records_per_msg") for r in runs]),
        "bytes_per_msg": median([r.get("persist", {}).get("bytes_per_msg") for r in runs]),
        "persist_counters_absent": any(r.get("persist", {}).get("absent") for r in runs),
        # Every repeat delivered at least HELD_MIN of the target.
        "held": (min(r["delivered_per_s"] for r in runs) >= HELD_MIN * int(target)
                 if target else None),
    }


def rates(path):
    groups = group(load(path)[0])
    scenarios = sorted({k[1] for k in groups if k[0] == "sat" and k[1] != "conn10k"})
    for scenario in scenarios:
        base = figures(groups, "sat", scenario, "mosquitto")
        if base is None:
            for other in ("flashmq-1t", "starling"):
                base = figures(groups, "sat", scenario, other)
                if base is not None:
                    print(f"aggregate.py: no Mosquitto run of {scenario}: rate from {other}'s",
                          file=sys.stderr)
                    break
        if base is None or not base["fan"] or not base["delivered_per_s"]:
            continue
        print(scenario, max(1, int(0.5 * base["delivered_per_s"] / base["fan"])))


def fan(path, scenario):
    groups = group(load(path)[0])
    fans = [r["fan"] for k, rs in groups.items() if k[0] == "sat" and k[1] == scenario
            for r in rs if r.get("fan")]
    if fans:
        print(f"{statistics.median(fans):g}")


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.3f}" if a / b < 0.1 else f"{a / b:.2f}"


def fmt(value, digits=3):
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def present(groups, variants, phase_prefix):
    """The variants of `variants` with runs in a phase starting with phase_prefix."""
    return [v for v in variants if any(k[2] == v and k[0].startswith(phase_prefix) for k in groups)]


def metric_table(groups, scenarios, phase, variants, key, show):
    """One row per scenario: `key` for each variant, then Starling / each other variant."""
    others = [v for v in variants if v != "starling"]
    ratios = others if "starling" in variants else []
    lines = ["| scenario | " + " | ".join(SHORT[v] for v in variants)
             + "".join(f" | S/{SHORT[v]}" for v in ratios) + " |",
             "| --- " + "| ---: " * (len(variants) + len(ratios)) + "|"]
    for scenario in scenarios:
        if scenario == "conn10k":
            continue
        f = {v: figures(groups, phase, scenario, v) for v in variants}
        val = {v: f[v][key] if f[v] else None for v in variants}
        if all(x is None for x in val.values()):
            continue
        cells = [scenario] + [show(val[v]) for v in variants]
        cells += [ratio(val["starling"], val[v]) for v in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def rate_table(groups, scenarios, variants):
    """Fixed-rate pass, one row per scenario, target and variant."""
    lines = ["| scenario | target/s | broker | delivered/s | held | CPU us/delivery | broker CPU % "
             "| p50 us | p99 us | deliveries/segment | bytes/segment | bench msgs/send "
             "| bench CPU % |",
             "| --- | ---: | --- | ---: | --- " + "| ---: " * 8 + "|"]
    cpu = rate_cpu_key(groups)
    for scenario, target in rate_keys(groups, scenarios):
        for v in variants:
            f = figures(groups, f"rate-{target}", scenario, v)
            if f is None:
                continue
            held = "yes" if f["held"] else f"no ({100 * f['delivered_min_per_s'] / target:.0f}%)"
            lines.append("| " + " | ".join([
                scenario, si(target), v, si(f["delivered_per_s"]), held,
                fmt(f[cpu]), fmt(f["broker_busy_pct"], 0), fmt(f["p50_us"], 0),
                fmt(f["p99_us"], 0),
                fmt(f["deliveries_per_seg"], 1), fmt(f["bytes_per_seg"], 0),
                fmt(f["bench_msgs_per_send"], 1), fmt(f["bench_cpu_pct"], 0)]) + " |")
    return lines


def rate_cpu_key(groups):
    """The CPU figure of the fixed-rate tables: schedstat's when every run has it."""
    rate_runs = [r for k, rs in groups.items() if k[0].startswith("rate-") for r in rs]
    if rate_runs and all(r.get("broker_tcp", {}).get("cpu_us_per_msg") is not None
                         for r in rate_runs):
        return "cpu_us_per_msg_sched"
    return "cpu_us_per_msg"


def rate_keys(groups, scenarios):
    targets = sorted({int(k[0].split("-", 1)[1]) for k in groups if k[0].startswith("rate-")})
    return [(s, t) for s in scenarios if s != "conn10k" for t in targets
            if any(k[0] == f"rate-{t}" and k[1] == s for k in groups)]


def rate_ratio_table(groups, scenarios, variants):
    """Starling / each other variant at each rate: CPU per delivery, p50, p99."""
    others = [v for v in variants if v != "starling"]
    if "starling" not in variants or not others:
        return []
    head = "| scenario | target/s"
    for metric in ("CPU", "p50", "p99"):
        head += "".join(f" | {metric} S/{SHORT[v]}" for v in others)
    lines = [head + " |", "| --- | ---: " + "| ---: " * (3 * len(others)) + "|"]
    for scenario, target in rate_keys(groups, scenarios):
        f = {v: figures(groups, f"rate-{target}", scenario, v) for v in variants}
        if f["starling"] is None:
            continue
        cells = [scenario, si(target)]
        for key in (rate_cpu_key(groups), "p50_us", "p99_us"):
            for v in others:
                if f[v] is None:
                    cells.append("-")
                    continue
                mark = "" if f["starling"]["held"] and f[v]["held"] else "*"
                cells.append(ratio(f["starling"][key], f[v][key]) + mark)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def persist_table(groups, scenarios):
    """Saturation runs of the persistence variants: the disk's share of the work."""
    lines = ["| scenario | broker | delivered/s | of Starling without persistence | "
             "msgs/fsync | fsyncs/s | records/msg | bytes/msg |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for scenario in scenarios:
        base = figures(groups, "sat", scenario, "starling")
        for v in PERSIST_VARIANTS + ("mosquitto-persist", "mosquitto"):
            f = figures(groups, "sat", scenario, v)
            if not f or (v == "mosquitto" and not any(figures(groups, "sat", scenario, p)
                                                      for p in PERSIST_VARIANTS)):
                continue
            share = ratio(f["delivered_per_s"], base["delivered_per_s"]) if base else "-"
            if v in PERSIST_VARIANTS and f["persist_counters_absent"]:
                disk = ["n/a (no $SYS counters)"] + ["-"] * 3
            else:
                disk = [fmt(f["msgs_per_fsync"], 1), fmt(f["fsyncs_per_s"], 0),
                        fmt(f["records_per_msg"], 2), fmt(f["bytes_per_msg"], 0)]
            lines.append(f"| {scenario} | {v} | {si(f['delivered_per_s'])} | {share} | "
                         + " | ".join(disk) + " |")
    return lines if len(lines) > 2 else []


def conn_table(groups):
    lines = ["| broker | RSS MiB with 10k idle connections | RSS per connection, bytes |",
             "| --- | ---: | ---: |"]
    for broker in VARIANTS:
        f = figures(groups, "sat", "conn10k", broker)
        if f:
            lines.append(f"| {broker} | {fmt(f['rss_mib'], 1)} "
                         f"| {fmt(f['rss_per_conn_bytes'], 0)} |")
    return lines if len(lines) > 2 else []


def warnings(runs, groups):
    out = []
    for run in runs:
        if not run.get("ok"):
            out.append(f"FAILED {phase_of(run)} {run.get('_scenario')} {run.get('_broker')} "
                       f"rep {run.get('_rep')}: {run.get('error', 'invalid payloads')}")
    for (phase, scenario, broker), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        f = figures(groups, phase, scenario, broker)
        if f["loss"] > 0:
            out.append(f"loss {f['loss']} in {phase} {scenario} {broker} (over {f['runs']} runs)")
        if phase == "sat" and scenario != "conn10k" and f["broker_busy_pct"] is not None \
                and f["broker_busy_pct"] < BROKER_BUSY_MIN:
            out.append(f"{broker} was {f['broker_busy_pct']:.0f}% busy in sat {scenario}: "
                       f"the bounded pipeline, not the broker's core, set the rate (a lower bound)")
        if f["held"] is False:
            out.append(f"{broker} did not hold {si(f['target_per_s'])}/s in {scenario}: "
                       f"{si(f['delivered_min_per_s'])}-{si(max(r['delivered_per_s'] for r in rs))}"
                       f"/s delivered")
        if f["bench_cpu_pct_max"] > BENCH_CPU_LIMIT:
            out.append(f"starling-bench used {f['bench_cpu_pct_max']:.0f}% CPU in {phase} "
                       f"{scenario} {broker}: the generator may have been the limit")
    return out


def write_chart(groups, scenarios, png):
    rows = [s for s in scenarios if s != "conn10k"]
    variants = present(groups, VARIANTS, "sat")
    if not rows or not variants:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as dat:
        for scenario in rows:
            cols = [scenario]
            for key in ("delivered_per_s", "cpu_us_per_msg"):
                for broker in variants:
                    f = figures(groups, "sat", scenario, broker)
                    value = f[key] if f and f[key] else None
                    cols.append("NaN" if value is None or value <= 0 else f"{value:.6g}")
            dat.write(" ".join(cols) + "\n")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chart.gp")
    titles = " ".join(TITLE[v] for v in variants)
    try:
        subprocess.run(["gnuplot", "-e", f"datafile='{dat.name}'; outfile='{png}'; "
                        f"n={len(variants)}; titles='{titles}'", script],
                       check=True, timeout=60)
        print(f"\nchart: {png}")
    except (OSError, subprocess.SubprocessError) as e:
        print(f"\naggregate.py: gnuplot failed: {e}", file=sys.stderr)
    finally:
        os.unlink(dat.name)


def print_section(title, intro, lines):
    if len(lines) > 2:
        print(f"\n## {title}\n")
        if intro:
            print(intro + "\n")
        print("\n".join(lines))


def report(args):
    runs, meta = load(args.results)
    groups = group(runs)
    scenarios = []
    for run in runs:
        if run.get("_scenario") and run["_scenario"] not in scenarios:
            scenarios.append(run["_scenario"])
    repeats = max([f["runs"] for f in (figures(groups, *k) for k in groups)] or [0])
    print(f"\n# Starling, FlashMQ and Mosquitto ({args.machine or 'this machine'}; "
          f"medians of up to {repeats} runs)\n")
    if meta:
        head = meta.get("repo_head", meta.get("starling", "?"))
        print(f"{meta.get('date', '?')}; repository at {head}, starlingd sha256 "
              f"{meta.get('starlingd_sha256', '?')}; FlashMQ {meta.get('flashmq') or '-'}; "
              f"Mosquitto {meta.get('mosquitto') or '-'}; broker on CPU "
              f"{meta.get('broker_cpu', '?')}, bench on CPU {meta.get('bench_cpu', '?')}; "
              f"load average at the start {meta.get('load', '?')}.\n")
    print("S Starling, F1 FlashMQ with thread_count 1, F FlashMQ with its default thread count, "
          "M Mosquitto, all with TCP_NODELAY; Fn, Mn: FlashMQ (default threads) and Mosquitto "
          "with Nagle, their default. Ratios are Starling / the other.")
    nodelay = present(groups, NODELAY, "sat")
    print_section("Saturation: delivered/s", None,
                  metric_table(groups, scenarios, "sat", nodelay, "delivered_per_s", si))
    print_section("Saturation: broker CPU us per delivered message", None,
                  metric_table(groups, scenarios, "sat", nodelay, "cpu_us_per_msg", fmt))
    print_section("Saturation: broker RSS MiB at the end of the window", None,
                  metric_table(groups, scenarios, "sat", nodelay, "rss_mib",
                               lambda x: fmt(x, 1)))
    lat = present(groups, NODELAY, "lat")
    print_section("Latency: p99 us at half of Mosquitto's saturation rate", None,
                  metric_table(groups, scenarios, "lat", lat, "p99_us", lambda x: fmt(x, 0)))
    nagle = present(groups, NAGLE, "sat")
    if any(v != "starling" for v in nagle):
        print_section("Starling (TCP_NODELAY) against the others with Nagle, at saturation: "
                      "delivered/s", None,
                      metric_table(groups, scenarios, "sat", nagle, "delivered_per_s", si))
        print_section("... broker CPU us per delivered message", None,
                      metric_table(groups, scenarios, "sat", nagle, "cpu_us_per_msg", fmt))
        print_section("... p99 us at saturation (a full pipeline's latency, not a target)", None,
                      metric_table(groups, scenarios, "sat", nagle, "p99_us",
                                   lambda x: fmt(x, 0)))
    fixed = present(groups, NODELAY, "rate-")
    print_section("Fixed rates", "Publish rate = target / fan-out, open loop. held: every run "
                  f"delivered at least {HELD_MIN:.0%} of the target. CPU us/delivery: "
                  + ("the broker's threads' schedstat CPU time per second over the run's "
                     "steady 100 ms intervals (median), over delivered/s. "
                     if rate_cpu_key(groups) == "cpu_us_per_msg_sched" else
                     "/proc/PID/stat over the window, over deliveries. ") +
                  "broker CPU %: of one core (all its threads). p50, p99: "
                  "latency of the window's messages (- when none arrived). deliveries/segment: "
                  "delivered/s over the TCP data segments/s the broker sent its subscribers "
                  "(tcp_segs.py: tcp_info's data_segs_out), the proxy for messages per send. bench "
                  "msgs/send: starling-bench's own publishes per send.",
                  rate_table(groups, scenarios, fixed))
    print_section("Fixed rates: Starling / the others", "CPU per delivery, p50 and p99; * where "
                  "one of the two did not hold the rate.",
                  rate_ratio_table(groups, scenarios, fixed))
    disk = persist_table(groups, scenarios)
    if disk:
        print_section("Persistence", "Saturation runs with persistence on (Starling: sync always "
                      "/ never; Mosquitto: its snapshots). Disk figures from Starling's "
                      "$SYS/broker/persistence counters read before and after each run (set-up "
                      "and clean-up included): messages published per fsync completed, fsyncs "
                      "per second of publishing, records and bytes appended per message.", disk)
    conn = conn_table(groups)
    if conn:
        print("\n## Idle connections\n")
        print("\n".join(conn))
    warn = warnings(runs, groups)
    if warn:
        print("\n## Warnings\n")
        print("\n".join("- " + w for w in warn))
    if args.summary:
        summary = {"machine": args.machine, "meta": meta,
                   "results": os.path.basename(args.results),
                   "figures": {f"{p}/{s}/{b}": figures(groups, p, s, b) for (p, s, b) in groups},
                   "warnings": warn}
        with open(args.summary, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
        print(f"\nsummary: {args.summary}")
    if args.chart:
        write_chart(groups, scenarios, args.chart)
    return 1 if any(not r.get("ok") for r in runs) else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("oneline")
    p = sub.add_parser("rates")
    p.add_argument("results")
    p = sub.add_parser("fan")
    p.add_argument("results")
    p.add_argument("scenario")
    p = sub.add_parser("attach")
    p.add_argument("segs")
    p = sub.add_parser("persist")
    p.add_argument("before")
    p.add_argument("after")
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("--chart")
    p.add_argument("--summary")
    p.add_argument("--machine")
    args = parser.parse_args()
    if args.cmd == "oneline":
        print(oneline(sys.stdin.read().strip().splitlines()[-1] if sys.stdin else ""))
        return 0
    if args.cmd == "attach":
        print(attach(args.segs, sys.stdin.read().strip().splitlines()[-1]))
        return 0
    if args.cmd == "persist":
        print(persist(args.before, args.after, sys.stdin.read().strip().splitlines()[-1]))
        return 0
    if args.cmd == "rates":
        rates(args.results)
        return 0
    if args.cmd == "fan":
        fan(args.results, args.scenario)
        return 0
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
