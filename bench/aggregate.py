#!/usr/bin/python3
"""Aggregates starling-bench JSON lines from bench/compare.sh into tables, a summary and a chart.

Each line of a results file is one run: starling-bench's JSON output, whose "label" carries
phase (sat or lat), scenario id, broker variant and repeat. Figures are medians over repeats.

  aggregate.py oneline < line          a short summary of one run (compare.sh's progress)
  aggregate.py rates RESULTS           per scenario, the fixed publish rate of the latency pass:
                                       half of Mosquitto's median saturation delivered/s,
                                       divided by the scenario's fan-out
  aggregate.py report RESULTS [--chart PNG] [--summary JSON] [--machine TEXT]
                                       markdown tables on stdout, summary JSON, PNG chart

Ratios are Starling / Mosquitto: above 1 is better for delivered/s, below 1 is better for CPU
per message, latency and memory.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

BENCH_CPU_LIMIT = 90.0  # percent: above this the generator may be what limits the run
BROKER_BUSY_MIN = 80.0  # percent: below this a saturation run did not saturate the broker
VARIANTS = ("starling", "mosquitto", "mosquitto-nagle")


def parse_label(label):
    fields = {}
    for part in (label or "").split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            fields[key] = value
    return fields


def load(path):
    runs = []
    with open(path, encoding="utf-8") as f:
        for text in f:
            text = text.strip()
            if not text.startswith("{"):
                continue
            try:
                run = json.loads(text)
            except json.JSONDecodeError:
                continue
            run.update({"_" + k: v for k, v in parse_label(run.get("label")).items()})
            runs.append(run)
    return runs


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
    return (f"delivered {si(run['delivered_per_s'])}/s, "
            f"broker {broker.get('cpu_us_per_msg', 0):.3f} us/msg, "
            f"p99 {run['latency_us']['p99']:.0f} us, loss {run['loss']}, "
            f"bench cpu {run['bench']['cpu_pct']:.0f}%")


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def group(runs):
    """(phase, scenario, broker) -> successful runs."""
    groups = {}
    for run in runs:
        if run.get("ok"):
            key = (run.get("_phase"), run.get("_scenario"), run.get("_broker"))
            groups.setdefault(key, []).append(run)
    return groups


def figures(groups, phase, scenario, broker):
    runs = groups.get((phase, scenario, broker), [])
    if not runs:
        return None
    b = [r.get("broker", {}) for r in runs]
    return {
        "runs": len(runs),
        "delivered_per_s": median([r["delivered_per_s"] for r in runs]),
        "sent_per_s": median([r["sent_per_s"] for r in runs]),
        "fan": median([r["fan"] for r in runs]),
        "cpu_us_per_msg": median([x.get("cpu_us_per_msg") for x in b]),
        "p50_us": median([r["latency_us"]["p50"] for r in runs]),
        "p99_us": median([r["latency_us"]["p99"] for r in runs]),
        "rss_mib": median([x.get("rss_kb", 0) / 1024 for x in b]),
        "rss_per_conn_bytes": median([x.get("rss_per_conn_bytes") for x in b]),
        "loss": sum(r["loss"] for r in runs),
        "bench_cpu_pct_max": max(r["bench"]["cpu_pct"] for r in runs),
        # Share of its core the broker used during the window.
        "broker_busy_pct": median([x.get("cpu_us_per_msg", 0) * r["delivered_per_s"] / 1e4
                                   for x, r in zip(b, runs)]),
    }


def rates(path):
    groups = group(load(path))
    scenarios = sorted({k[1] for k in groups if k[0] == "sat" and k[1] != "conn10k"})
    for scenario in scenarios:
        base = figures(groups, "sat", scenario, "mosquitto")
        if base is None:
            base = figures(groups, "sat", scenario, "starling")
            print(f"aggregate.py: no Mosquitto run of {scenario}: rate from Starling's",
                  file=sys.stderr)
        if base is None or not base["fan"] or not base["delivered_per_s"]:
            continue
        print(scenario, max(1, int(0.5 * base["delivered_per_s"] / base["fan"])))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def fmt(value, digits=3):
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def main_table(groups, scenarios, other):
    """Starling against `other` (mosquitto or mosquitto-nagle), one row per scenario."""
    lines = [
        "| scenario | delivered/s S | M | S/M | CPU us/msg S | M | S/M "
        "| p99 us S | M | S/M | RSS MiB S | M | S/M |",
        "| --- " + "| ---: " * 12 + "|",
    ]
    lat_phase = "lat" if other == "mosquitto" else "sat"
    for scenario in scenarios:
        if scenario == "conn10k":
            continue
        s = figures(groups, "sat", scenario, "starling")
        m = figures(groups, "sat", scenario, other)
        sl = figures(groups, lat_phase, scenario, "starling")
        ml = figures(groups, lat_phase, scenario, other)
        get = lambda f, k: f[k] if f else None  # noqa: E731
        lines.append("| " + " | ".join([
            scenario,
            si(get(s, "delivered_per_s")), si(get(m, "delivered_per_s")),
            ratio(get(s, "delivered_per_s"), get(m, "delivered_per_s")),
            fmt(get(s, "cpu_us_per_msg")), fmt(get(m, "cpu_us_per_msg")),
            ratio(get(s, "cpu_us_per_msg"), get(m, "cpu_us_per_msg")),
            fmt(get(sl, "p99_us"), 0), fmt(get(ml, "p99_us"), 0),
            ratio(get(sl, "p99_us"), get(ml, "p99_us")),
            fmt(get(s, "rss_mib"), 1), fmt(get(m, "rss_mib"), 1),
            ratio(get(s, "rss_mib"), get(m, "rss_mib")),
        ]) + " |")
    return lines


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
            out.append(f"FAILED {run.get('_phase')} {run.get('_scenario')} {run.get('_broker')} "
                       f"rep {run.get('_rep')}: {run.get('error', 'invalid payloads')}")
    for (phase, scenario, broker), rs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        f = figures(groups, phase, scenario, broker)
        if f["loss"] > 0:
            out.append(f"loss {f['loss']} in {phase} {scenario} {broker} (over {f['runs']} runs)")
        if phase == "sat" and scenario != "conn10k" and f["broker_busy_pct"] is not None \
                and f["broker_busy_pct"] < BROKER_BUSY_MIN:
            out.append(f"{broker} was {f['broker_busy_pct']:.0f}% busy in sat {scenario}: "
                       f"the bounded pipeline, not the broker's core, set the rate (a lower bound)")
        if f["bench_cpu_pct_max"] > BENCH_CPU_LIMIT:
            out.append(f"starling-bench used {f['bench_cpu_pct_max']:.0f}% CPU in {phase} "
                       f"{scenario} {broker}: the generator may have been the limit")
    return out


def write_chart(groups, scenarios, png):
    rows = [s for s in scenarios if s != "conn10k"]
    if not rows:
        return
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as dat:
        for scenario in rows:
            cols = [scenario]
            for key in ("delivered_per_s", "cpu_us_per_msg"):
                for broker in VARIANTS:
                    f = figures(groups, "sat", scenario, broker)
                    value = f[key] if f and f[key] else None
                    cols.append("NaN" if value is None or value <= 0 else f"{value:.6g}")
            dat.write(" ".join(cols) + "\n")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chart.gp")
    try:
        subprocess.run(["gnuplot", "-e", f"datafile='{dat.name}'; outfile='{png}'", script],
                       check=True, timeout=60)
        print(f"\nchart: {png}")
    except (OSError, subprocess.SubprocessError) as e:
        print(f"\naggregate.py: gnuplot failed: {e}", file=sys.stderr)
    finally:
        os.unlink(dat.name)


def report(args):
    runs = load(args.results)
    groups = group(runs)
    scenarios = []
    for run in runs:
        if run.get("_scenario") and run["_scenario"] not in scenarios:
            scenarios.append(run["_scenario"])
    repeats = max([f["runs"] for f in (figures(groups, *k) for k in groups)] or [0])
    print(f"\n## Starling and Mosquitto, both with TCP_NODELAY ({args.machine or 'this machine'}; "
          f"medians of up to {repeats} runs)\n")
    print("delivered/s and CPU per delivered message at saturation; p99 latency at half of "
          "Mosquitto's saturation rate; S/M = Starling / Mosquitto.\n")
    print("\n".join(main_table(groups, scenarios, "mosquitto")))
    if any(k[2] == "mosquitto-nagle" for k in groups):
        print("\n## Starling (TCP_NODELAY) and Mosquitto with its default (Nagle), at saturation\n")
        print("Here p99 is at saturation: the latency of a full pipeline, not a target.\n")
        print("\n".join(main_table(groups, scenarios, "mosquitto-nagle")))
    conn = conn_table(groups)
    if conn:
        print("\n## Idle connections\n")
        print("\n".join(conn))
    warn = warnings(runs, groups)
    if warn:
        print("\n## Warnings\n")
        print("\n".join("- " + w for w in warn))
    if args.summary:
        summary = {"machine": args.machine, "results": os.path.basename(args.results),
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
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("--chart")
    p.add_argument("--summary")
    p.add_argument("--machine")
    args = parser.parse_args()
    if args.cmd == "oneline":
        print(oneline(sys.stdin.read().strip().splitlines()[-1] if sys.stdin else ""))
        return 0
    if args.cmd == "rates":
        rates(args.results)
        return 0
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
