#!/usr/bin/env bash
# How Starling scales with worker threads (bench/README.md, "Scaling with workers").
#
# For every scenario, starlingd runs with each worker count in turn (-t 1, 2, 4, ... up to the
# CPUs given to it), restarted fresh for each run and alternating within each repeat, loaded by
# starling-bench with --threads on its own CPUs. Prints, per scenario and worker count, the
# median delivered/s, the broker's CPU per delivered message, and both as a ratio to -t 1.
#
#   bench/scale.sh                       1, 2, 4, ... workers on all CPUs, bench on all CPUs
#   bench/scale.sh --broker-cpus 0 --bench-cpus 1 --workers 1,2
#                                        the cost of crossing workers: two workers on one CPU
#   bench/scale.sh --compare-bin DIR --workers 1
#                                        a build against another (before/after a change),
#                                        alternating in one run
#
# On a many-core host give the broker and the generator separate CPU sets, e.g. --broker-cpus
# 0-15 --bench-cpus 16-31. Every process is started with a known PID and stopped by it; every
# run is bounded (starling-bench's deadline, then timeout).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BIN=$ROOT/build
CMP_BIN=""
NCPU=$(nproc)
BROKER_CPUS="0-$((NCPU - 1))"
BENCH_CPUS="0-$((NCPU - 1))"
WORKERS=""
BENCH_THREADS=""
SCENARIOS=pairs50-q0-16,fanin50-q0-16,fanout50-q0-16,pairs50-q1-16,fanin50-q1-16
REPEATS=3
DURATION=3
WARMUP=0.5
COALESCE=100
OUT=$ROOT/bench/results

usage() {
	cat <<'EOF'
usage: bench/scale.sh [options]
  --workers LIST       worker counts (default 1,2,4,... up to the broker's CPUs)
  --broker-cpus LIST   taskset CPU list for starlingd (default: all)
  --bench-cpus LIST    taskset CPU list for starling-bench (default: all)
  --bench-threads N    starling-bench --threads (default: CPUs in --bench-cpus)
  --scenarios LIST     ids as in compare.sh: pairs50-q0-16,fanin50-q0-16,fanout50-q0-16,
                       pairs50-q1-16,fanin50-q1-16 (default)
  --repeats N          runs per scenario and worker count; medians reported (3)
  --duration SEC       measurement window (3)
  --bin DIR            starlingd and starling-bench (build)
  --compare-bin DIR    also run DIR's starlingd, labelled "base" (before/after a change)
  --out DIR            where the JSON lines go (bench/results)
EOF
}

while [ $# -gt 0 ]; do
	case "$1" in
	--workers) WORKERS=${2//,/ }; shift 2 ;;
	--broker-cpus) BROKER_CPUS=$2; shift 2 ;;
	--bench-cpus) BENCH_CPUS=$2; shift 2 ;;
	--bench-threads) BENCH_THREADS=$2; shift 2 ;;
	--scenarios) SCENARIOS=$2; shift 2 ;;
	--repeats) REPEATS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--bin) BIN=$(cd "$2" && pwd); shift 2 ;;
	--compare-bin) CMP_BIN=$(cd "$2" && pwd); shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "scale.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done

die() {
	echo "scale.sh: $*" >&2
	exit 1
}


BROKER_NCPU=$(cpu_count "$BROKER_CPUS")
if [ -z "$WORKERS" ]; then
	n=1
	while [ "$n" -le "$BROKER_NCPU" ]; do
		WORKERS="$WORKERS $n"
		n=$((n * 2))
	done
fi
[ -n "$BENCH_THREADS" ] || BENCH_THREADS=$(cpu_count "$BENCH_CPUS")
for b in starlingd starling-bench; do
	[ -x "$BIN/$b" ] || die "$BIN/$b missing (make all)"
done
[ -z "$CMP_BIN" ] || [ -x "$CMP_BIN/starlingd" ] || die "$CMP_BIN/starlingd missing"
"$BIN/starling-bench" --help 2>&1 | grep -q -- --threads || BENCH_THREADS=1

scenario_args() {
	local id=$1 base q p
	base=${id%%-q*}
	q=${id#*-q}
	p=${q#*-}
	q=${q%%-*}
	case "$base" in
	fanout50) echo "fanout -P 1 -S 50" ;;
	fanout500) echo "fanout -P 1 -S 500" ;;
	fanin50) echo "fanin -P 50 -S 1" ;;
	pairs50) echo "pairs -c 50" ;;
	pairs500) echo "pairs -c 500" ;;
	*) die "unknown scenario $id" ;;
	esac
	echo "-q $q -s $p"
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RESULTS=$OUT/scale-$STAMP.jsonl
WORK=$(mktemp -d /tmp/starling-scale.XXXXXX)
BROKER_PID=""

trap 'stop_broker; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM



# start_broker BIN WORKERS: a fresh broker on a free port (sets BROKER_PID and PORT).
start_broker() {
	local bin=$1 n=$2 conf=$WORK/broker.conf threads=""
	PORT=$(free_port)
	cat >"$conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
max_inflight_messages 20
max_queued_messages 100000
CONF
	# A build from before worker threads takes no -t (and is one worker).
	if "$bin/starlingd" -h 2>&1 | grep -q -- --threads; then
		threads="-t $n"
	elif [ "$n" != 1 ]; then
		die "$bin/starlingd has no worker threads"
	fi
	# shellcheck disable=SC2086
	taskset -c "$BROKER_CPUS" "$bin/starlingd" -c "$conf" $threads >"$WORK/broker.log" 2>&1 &
	BROKER_PID=$!
	wait_port "$PORT" || { cat "$WORK/broker.log" >&2; die "starlingd did not start"; }
}

run_one() {
	local rep=$1 id=$2 variant=$3 bin=$4 n=$5 label line rc=0
	label="scenario=$id;variant=$variant;workers=$n;rep=$rep"
	start_broker "$bin" "$n"
	# shellcheck disable=SC2046
	line=$(taskset -c "$BENCH_CPUS" timeout -k 5 120 "$BIN/starling-bench" $(scenario_args "$id") \
		--threads "$BENCH_THREADS" -d "$DURATION" -w "$WARMUP" --outstanding 50000 \
		--queue-max 10000 $(case "$id" in *-q0-*) echo "--coalesce-us $COALESCE" ;; esac) \
		-p "$PORT" --broker-pid "$BROKER_PID" --json --label "$label" 2>"$WORK/bench.err") || rc=$?
	kill -0 "$BROKER_PID" 2>/dev/null || line="{\"ok\":false,\"error\":\"broker died\",\"label\":\"$label\"}"
	[ -n "$line" ] || line="{\"ok\":false,\"error\":\"starling-bench exited $rc\",\"label\":\"$label\"}"
	stop_broker
	echo "$line" | tail -n 1 >>"$RESULTS"
	printf '  %-6s -t %-3s %-16s %s\n' "$variant" "$n" "$id" \
		"$($PY "$ROOT/bench/aggregate.py" oneline <<<"$line")"
}

echo "scale.sh: workers [$WORKERS ] on CPUs $BROKER_CPUS; starling-bench --threads $BENCH_THREADS on CPUs $BENCH_CPUS"
echo "scale.sh: results in $RESULTS"
for rep in $(seq 1 "$REPEATS"); do
	for id in ${SCENARIOS//,/ }; do
		for n in $WORKERS; do
			run_one "$rep" "$id" new "$BIN" "$n"
			[ -z "$CMP_BIN" ] || run_one "$rep" "$id" base "$CMP_BIN" "$n"
		done
	done
done

$PY - "$RESULTS" <<'PYEOF'
import json, statistics, sys
runs = {}
for text in open(sys.argv[1]):
    try:
        r = json.loads(text)
    except ValueError:
        continue
    f = dict(p.split("=", 1) for p in r.get("label", "").split(";") if "=" in p)
    if not r.get("ok"):
        print("failed run:", f, r.get("error"))
        continue
    key = (f["scenario"], f["variant"], int(f["workers"]))
    runs.setdefault(key, []).append(r)
med = lambda xs: statistics.median(xs) if xs else None
print()
print("| scenario | build | workers | delivered/s | broker us/delivery | delivered vs -t 1 | CPU/delivery vs -t 1 |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for key in sorted(runs):
    scen, variant, n = key
    d = med([r["delivered_per_s"] for r in runs[key]])
    c = med([r["broker"]["cpu_us_per_msg"] for r in runs[key]])
    one = runs.get((scen, variant, 1))
    d1 = med([r["delivered_per_s"] for r in one]) if one else None
    c1 = med([r["broker"]["cpu_us_per_msg"] for r in one]) if one else None
    print("| %s | %s | %d | %.0f | %.3f | %s | %s |" % (
        scen, variant, n, d, c, "%.2fx" % (d / d1) if d1 else "-",
        "%.2fx" % (c / c1) if c1 else "-"))
PYEOF
