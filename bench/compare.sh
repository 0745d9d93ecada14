#!/usr/bin/env bash
# Starling against Mosquitto, side by side, on this machine (make bench-compare).
#
# For every scenario, each broker in turn is started fresh from a generated config on a free
# loopback port, pinned to one CPU, and loaded by starling-bench pinned to another; the brokers
# alternate within each repeat so that drift in the machine hits both alike. Two passes:
#   saturation  no rate: starling-bench keeps a bounded number of messages in flight and the
#               broker runs flat out (delivered/s, broker CPU per delivered message, RSS);
#   latency     a fixed rate of half Mosquitto's saturation delivered/s (p99 latency).
# Mosquitto runs twice in the saturation pass: with set_tcp_nodelay true like Starling, and with
# its default (Nagle). Results: bench/results/<stamp>.jsonl (one starling-bench JSON line per
# run), <stamp>-summary.json, <stamp>.png, and the tables on stdout (bench/aggregate.py).
#
# Every run is bounded (starling-bench's own deadline, then `timeout`), every broker is stopped
# by its PID, and the whole comparison takes minutes: about 4 s per run, 20 min in all by
# default (the count is printed up front; --repeats 1 or fewer --scenarios for less).
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/compare.sh [options]
  --brokers LIST     starling,mosquitto (default both; 'mosquitto' also adds its Nagle run)
  --scenarios LIST   fanout50,fanout500,fanin50,pairs50,wildcard100k,conn10k (default all),
                     or full ids such as fanout50-q1-256
  --qos LIST         QoS levels for message scenarios (0,1)
  --payloads LIST    payload sizes in bytes (16,256)
  --repeats N        runs per scenario and broker; medians are reported (3)
  --duration SEC     measurement window per run (2)
  --warmup SEC       publishing before the window (0.5)
  --no-latency       skip the fixed-rate latency pass
  --no-nagle         skip Mosquitto with its default Nagle setting
  --coalesce-us N    starling-bench --coalesce-us in QoS 0 saturation runs (100)
  --outstanding N    starling-bench --outstanding in the saturation pass (50000)
  --queue-max N      starling-bench --queue-max in the saturation pass (10000)
  --broker-cpu LIST  CPUs for the broker, a taskset list (0); Starling gets one worker per CPU
  --bench-cpu N      CPU for starling-bench (1)
  --bin DIR          where starlingd and starling-bench are (build)
  --out DIR          results directory (bench/results)
  --dry-run          print the runs, run nothing
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BROKERS=starling,mosquitto
SCENARIOS=fanout50,fanout500,fanin50,pairs50,wildcard100k,conn10k
QOS_LIST=0,1
PAYLOADS=16,256
REPEATS=3
DURATION=2
WARMUP=0.5
LATENCY=1
NAGLE=1
# QoS 0 saturation runs only: QoS 1 acks must go out at once, or a subscriber's 20-message
# inflight window makes the bench's wake-up period the limit.
COALESCE=100
# In flight without a rate: room for the brokers to batch; both configs queue far more.
OUTSTANDING=50000
QUEUE_MAX=10000
BROKER_CPU=0
BENCH_CPU=1
BIN=$ROOT/build
OUT=$ROOT/bench/results
DRY=0

while [ $# -gt 0 ]; do
	case "$1" in
	--brokers) BROKERS=$2; shift 2 ;;
	--scenarios) SCENARIOS=$2; shift 2 ;;
	--qos) QOS_LIST=$2; shift 2 ;;
	--payloads) PAYLOADS=$2; shift 2 ;;
	--repeats) REPEATS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--no-latency) LATENCY=0; shift ;;
	--no-nagle) NAGLE=0; shift ;;
	--coalesce-us) COALESCE=$2; shift 2 ;;
	--outstanding) OUTSTANDING=$2; shift 2 ;;
	--queue-max) QUEUE_MAX=$2; shift 2 ;;
	--broker-cpu) BROKER_CPU=$2; shift 2 ;;
	--bench-cpu) BENCH_CPU=$2; shift 2 ;;
	--bin) BIN=$(cd "$2" && pwd); shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--dry-run) DRY=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done

die() {
	echo "compare.sh: $*" >&2
	exit 1
}

# starling-bench arguments of each base scenario.
scenario_args() {
	case "$1" in
	fanout50) echo "fanout -P 1 -S 50" ;;
	fanout500) echo "fanout -P 1 -S 500" ;;
	fanin50) echo "fanin -P 50 -S 1" ;;
	pairs50) echo "pairs -c 50" ;;
	wildcard100k) echo "wildcard -P 10 -S 100 -n 100000 -t 100" ;;
	conn10k) echo "connections -c 10000" ;;
	*) return 1 ;;
	esac
}

# Expands the selection into ids: base-qQ-PAYLOAD, or conn10k.
expand_scenarios() {
	local s q p
	for s in ${SCENARIOS//,/ }; do
		case "$s" in
		conn10k) echo conn10k ;;
		*-q*-*)
			scenario_args "${s%%-q*}" >/dev/null || die "unknown scenario $s"
			echo "$s"
			;;
		*)
			scenario_args "$s" >/dev/null || die "unknown scenario $s"
			for q in ${QOS_LIST//,/ }; do
				for p in ${PAYLOADS//,/ }; do echo "$s-q$q-$p"; done
			done
			;;
		esac
	done
}

IDS=$(expand_scenarios)
VARIANTS=""
for b in ${BROKERS//,/ }; do
	case "$b" in
	starling) VARIANTS="$VARIANTS starling" ;;
	mosquitto)
		VARIANTS="$VARIANTS mosquitto"
		[ "$NAGLE" = 1 ] && VARIANTS="$VARIANTS mosquitto-nagle"
		;;
	*) die "unknown broker $b (starling, mosquitto)" ;;
	esac
done
[ -n "$VARIANTS" ] || die "no broker selected"

BENCH=$BIN/starling-bench
[ -x "$BENCH" ] || die "$BENCH not found: build it first (make B=${BIN#"$ROOT"/} all)"
case " $VARIANTS " in *" starling "*)
	[ -x "$BIN/starlingd" ] || die "$BIN/starlingd not found; use --brokers mosquitto to run without it" ;;
esac
case " $VARIANTS " in *" mosquitto"*)
	[ -x /usr/sbin/mosquitto ] || die "/usr/sbin/mosquitto not found (apt-get install mosquitto)" ;;
esac
[ "$(nproc)" -ge 2 ] || echo "compare.sh: warning: one CPU only; broker and bench share it" >&2

# Brokers inherit this: 10k connections need more than the usual 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -ge 11000 ] || echo "compare.sh: warning: ulimit -n is $(ulimit -n); conn10k may fail" >&2

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RESULTS=$OUT/$STAMP.jsonl
WORK=$(mktemp -d /tmp/starling-compare.XXXXXX)
BROKER_PID=""
BROKER_PORT=""


cleanup() {
	stop_broker
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM




# Writes the config of a broker variant (Mosquitto syntax, which starlingd reads too).
write_config() {
	local variant=$1 port=$2 conf=$3 nodelay=true
	[ "$variant" = mosquitto-nagle ] && nodelay=false
	# max_queued_messages well above what starling-bench keeps in flight: Mosquitto 2.0.11
	# dropped QoS 1 messages with its default (1000) in fan-in even with 100 in flight.
	cat >"$conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_connections -1
set_tcp_nodelay $nodelay
max_inflight_messages 20
max_queued_messages 100000
CONF
	# Starling runs one worker per CPU it is given (one, by default); Mosquitto has one thread.
	[ "$variant" = starling ] && echo "worker_threads $(cpu_count "$BROKER_CPU")" >>"$conf"
	return 0
}

start_broker() {
	local variant=$1 conf=$WORK/$1.conf log=$WORK/$1.log
	BROKER_PORT=$(free_port)
	write_config "$variant" "$BROKER_PORT" "$conf"
	case "$variant" in
	starling) taskset -c "$BROKER_CPU" "$BIN/starlingd" -c "$conf" >"$log" 2>&1 &
		;;
	*) taskset -c "$BROKER_CPU" /usr/sbin/mosquitto -c "$conf" >"$log" 2>&1 &
		;;
	esac
	BROKER_PID=$!
	if ! wait_port "$BROKER_PORT"; then
		echo "compare.sh: $variant did not start; its log:" >&2
		cat "$log" >&2
		stop_broker
		return 1
	fi
}

# Bench arguments for a scenario id, without port and pid.
bench_args() {
	local id=$1 base q p
	if [ "$id" = conn10k ]; then
		echo "$(scenario_args conn10k) -d $DURATION"
		return
	fi
	base=${id%%-q*}
	q=${id#*-q}
	p=${q#*-}
	q=${q%%-*}
	echo "$(scenario_args "$base") -q $q -s $p -d $DURATION -w $WARMUP"
}

# One run; appends its JSON line (or a failure line) to $RESULTS.
run_one() {
	local phase=$1 rep=$2 id=$3 variant=$4 extra=$5 label line rc=0
	label="phase=$phase;scenario=$id;broker=$variant;rep=$rep"
	if [ "$DRY" = 1 ]; then
		echo "  $variant: starling-bench $(bench_args "$id") $extra"
		return
	fi
	if ! start_broker "$variant"; then
		echo "{\"ok\":false,\"error\":\"broker did not start\",\"label\":\"$label\"}" >>"$RESULTS"
		return
	fi
	# starling-bench bounds itself (setup 60 s + window + drain); timeout is the backstop.
	# The argument lists are split into words on purpose.
	# shellcheck disable=SC2046,SC2086
	line=$(taskset -c "$BENCH_CPU" timeout -k 5 120 "$BENCH" $(bench_args "$id") $extra \
		-p "$BROKER_PORT" --broker-pid "$BROKER_PID" --json --label "$label" 2>"$WORK/bench.err") || rc=$?
	if ! kill -0 "$BROKER_PID" 2>/dev/null; then
		line="{\"ok\":false,\"error\":\"the broker died during the run\",\"label\":\"$label\"}"
	elif [ -z "$line" ]; then
		line="{\"ok\":false,\"error\":\"starling-bench exited $rc without output\",\"label\":\"$label\"}"
	fi
	stop_broker
	echo "$line" | tail -n 1 >>"$RESULTS"
	printf '  %-16s %-26s %s\n' "$variant" "$id" \
		"$($PY "$ROOT/bench/aggregate.py" oneline <<<"$line")"
}

# Word splitting of the lists is intended below.
# shellcheck disable=SC2086
count_runs() {
	local n_ids n_var lat=0
	n_ids=$(echo $IDS | wc -w)
	n_var=$(echo $VARIANTS | wc -w)
	if [ "$LATENCY" = 1 ]; then
		lat=$(echo $IDS | tr ' ' '\n' | grep -vc '^conn10k$' || true)
		lat=$((lat * $(echo $VARIANTS | tr ' ' '\n' | grep -vc nagle)))
	fi
	echo $(((n_ids * n_var + lat) * REPEATS))
}

# Other processes on the two CPUs skew every figure: say so before spending 20 minutes.
LOAD=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$LOAD" 'BEGIN { exit !(l > 0.5) }'; then
	echo "compare.sh: warning: load average $LOAD: other processes are using the CPUs; figures will be noisy" >&2
fi
RUNS=$(count_runs)
echo "compare.sh: $RUNS runs (about $((RUNS * 4 / 60 + 1)) min): brokers [$VARIANTS ], broker on CPU $BROKER_CPU, bench on CPU $BENCH_CPU"
# shellcheck disable=SC2086
echo "compare.sh: scenarios:" $IDS
[ "$DRY" = 1 ] || echo "compare.sh: results in $RESULTS"

echo "== saturation pass (no rate; --outstanding $OUTSTANDING --queue-max $QUEUE_MAX; QoS 0: --coalesce-us $COALESCE)"
for rep in $(seq 1 "$REPEATS"); do
	for id in $IDS; do
		for variant in $VARIANTS; do
			extra="--outstanding $OUTSTANDING --queue-max $QUEUE_MAX"
			case "$id" in *-q0-*) extra="$extra --coalesce-us $COALESCE" ;; esac
			[ "$id" = conn10k ] && extra=""
			run_one sat "$rep" "$id" "$variant" "$extra"
		done
	done
done

if [ "$LATENCY" = 1 ]; then
	echo "== latency pass (half of Mosquitto's saturation rate)"
	if [ "$DRY" = 1 ]; then
		RATES=$(for id in $IDS; do [ "$id" = conn10k ] || echo "$id RATE"; done)
	else
		RATES=$($PY "$ROOT/bench/aggregate.py" rates "$RESULTS")
	fi
	for rep in $(seq 1 "$REPEATS"); do
		while read -r id rate; do
			[ -n "$id" ] || continue
			for variant in $VARIANTS; do
				[ "$variant" = mosquitto-nagle ] && continue
				run_one lat "$rep" "$id" "$variant" "-r $rate"
			done
		done <<<"$RATES"
	done
fi

[ "$DRY" = 1 ] && exit 0
$PY "$ROOT/bench/aggregate.py" report "$RESULTS" --chart "$OUT/$STAMP.png" \
	--summary "$OUT/$STAMP-summary.json" --machine "$(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
