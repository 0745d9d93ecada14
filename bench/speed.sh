#!/usr/bin/env bash
# How fast is starling-bench itself? (bench/README.md, "The generator's own speed".)
#
# starling-bench, pinned to one CPU, against starling-sink (bench/sink.c), a fake broker pinned
# to the other that answers CONNACK/SUBACK and discards publishes, or with --source streams
# pre-encoded publishes at every subscriber:
#   publish  starling-bench fanin -P N -S 0: N publishers, no subscribers; the sink counts what
#            arrives, and its count must equal what the bench generated, exactly;
#   receive  starling-bench fanout -P 0 -S N --ext-publishers 1: N subscribers counting,
#            sequence-checking and timing every publish the source streams.
# --threads T runs starling-bench with T io_uring threads (the clients spread over them), and
# --bench-cpus gives it more than one CPU to run them on.
# Every process is started with a known PID and stopped by it; every run is bounded.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
BIN=$ROOT/build
DURATION=5
REPEATS=3
CLIENTS="1 4"
PAYLOAD=16
SINK_CPU=0
BENCH_CPU=1
THREADS=1

while [ $# -gt 0 ]; do
	case "$1" in
	--bin) BIN=$(cd "$2" && pwd); shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--repeats) REPEATS=$2; shift 2 ;;
	--clients) CLIENTS=${2//,/ }; shift 2 ;;
	--payload) PAYLOAD=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--bench-cpus) BENCH_CPU=$2; shift 2 ;;
	-h | --help)
		echo "usage: bench/speed.sh [--bin DIR] [--duration SEC] [--repeats N] [--clients 1,4] [--payload BYTES]"
		echo "                      [--threads N] [--bench-cpus LIST]"
		exit 0 ;;
	*) echo "speed.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
for b in starling-bench starling-sink; do
	[ -x "$BIN/$b" ] || { echo "speed.sh: $BIN/$b missing (make B=... $BIN/$b)" >&2; exit 1; }
done

SINK_PID=""
WORK=$(mktemp -d /tmp/starling-speed.XXXXXX)
stop_sink() {
	[ -n "$SINK_PID" ] || return 0
	kill "$SINK_PID" 2>/dev/null || true
	wait "$SINK_PID" 2>/dev/null || true
	SINK_PID=""
}
trap 'stop_sink; rm -rf "$WORK"' EXIT

free_port() {
	$PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run MODE CLIENTS: one run with a fresh sink; prints a result line.
run() {
	local mode=$1 n=$2 port args sink_args="" bench_json sink_json
	port=$(free_port)
	if [ "$mode" = receive ]; then
		sink_args="--source"
		args="fanout -P 0 -S $n --ext-publishers 1"
	else
		args="fanin -P $n -S 0"
	fi
	# The default leaves the bench's command line as it always was.
	[ "$THREADS" = 1 ] || args="$args --threads $THREADS"
	# The sink bounds itself too: the run's length plus a margin.
	taskset -c "$SINK_CPU" "$BIN/starling-sink" -p "$port" -s "$PAYLOAD" $sink_args \
		--duration $((DURATION + 30)) >"$WORK/sink.json" &
	SINK_PID=$!
	sleep 0.2
	# shellcheck disable=SC2086
	bench_json=$(taskset -c "$BENCH_CPU" timeout -k 5 $((DURATION + 60)) "$BIN/starling-bench" \
		$args -s "$PAYLOAD" -p "$port" -d "$DURATION" -w 1 --broker-pid "$SINK_PID" --json)
	stop_sink
	sink_json=$(tail -n 1 "$WORK/sink.json")
	$PY - "$mode" "$n" "$bench_json" "$sink_json" <<'PYEOF'
import json, sys
mode, n, bench, sink = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
if not bench.get("ok"):
    sys.exit("speed.sh: run failed: %s" % bench.get("error"))
cpu = bench["bench"]["cpu_pct"]
if mode == "publish":
    rate, other = bench["sent_per_s"], sink["received"]
    exact = "sink received %d of %d sent: %s" % (other, bench["sent_total"],
                                                 "exact" if other == bench["sent_total"] else "MISMATCH")
else:
    rate = bench["delivered_per_s"]
    exact = "source streamed %.2fM/s, seq errors %d" % (sink["streamed_per_s"] / 1e6,
                                                       bench["duplicates"] + bench["out_of_order"])
threads = bench.get("threads", 1)
print("%-8s %d clients%s: %6.2fM msgs/s, bench CPU %3.0f%% of one core, %.1f ns CPU/msg; %s"
      % (mode, n, ", %d threads" % threads if threads > 1 else "", rate / 1e6, cpu,
         cpu / 100 * 1e9 / rate if rate else 0, exact))
print(json.dumps({"mode": mode, "clients": n, "rate": rate, "bench_cpu_pct": cpu,
                  "bench": bench, "sink": sink}), file=sys.stderr)
PYEOF
}

echo "speed.sh: $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "speed.sh: starling-bench on CPU $BENCH_CPU ($THREADS threads), starling-sink on CPU $SINK_CPU, payload $PAYLOAD B, $DURATION s windows, $REPEATS repeats"
for mode in publish receive; do
	for n in $CLIENTS; do
		for _ in $(seq 1 "$REPEATS"); do
			run "$mode" "$n" 2>>"$WORK/runs.jsonl"
		done
	done
done
mkdir -p "$ROOT/bench/results"
cp "$WORK/runs.jsonl" "$ROOT/bench/results/speed-$(date +%Y%m%d-%H%M%S).jsonl"
