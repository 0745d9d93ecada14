#!/bin/bash
# Does holding many idle connections move an active fan-out's tail latency?
#
#   bench/idle.sh [--idle N] [--repeats R] [--duration S] [--rate DELIVERIES] BIN [BIN...]
#
# For each starlingd binary given (alternating, R rounds), one broker on CPU 0 runs a rated
# fan-out (4 publishers, 50 subscribers, QoS 0, 16 B; --rate deliveries/s, 200k by default)
# twice: with no other connection, then while N idle MQTT connections (18000 by default) are
# held, each with a keep alive of 60 s. A broker whose housekeeping walks every connection
# once a second shows it here as a longer tail; one whose timers cost only what fires does
# not. The idle clients come from several source addresses (127.0.0.1-4) so that no one
# address runs out of ports, and from one starling-bench per address (the per-process file
# limit). Prints one line per run and writes the JSON lines to bench/results/idle-DATE.jsonl.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
BENCH=${STARLING_BENCH:-$HERE/../build/starling-bench}
IDLE=18000
REPEATS=3
DURATION=5
RATE=200000
SUBS=50
PUBS=4
SETTLE=${SETTLE:-2}
while [ $# -gt 0 ]; do
	case "$1" in
	--idle) IDLE=$2; shift 2 ;;
	--repeats) REPEATS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	-*) echo "idle.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
need=$((IDLE + 200))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need" ]; then
	echo "idle.sh: the hard limit on open files ($(ulimit -Hn)) is below the $need the broker needs" >&2
	exit 2
fi
ulimit -n "$(ulimit -Hn)"

OUT="$HERE/results/idle-$(date -u +%Y%m%d-%H%M%S).jsonl"
mkdir -p "$HERE/results"
TMP=$(mktemp -d)
IDLE_PIDS=()
BROKER_PID=""
cleanup() {
	for p in "${IDLE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${IDLE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	IDLE_PIDS=()
	stop_broker
}
trap 'cleanup; rm -rf "$TMP"' EXIT

# The broker's count of connected clients, from $SYS (one worker or many: summed).
clients_connected() {
	timeout 3 mosquitto_sub -p "$1" -t '$SYS/broker/clients/connected' -C 1 -W 2 2>/dev/null || echo 0
}

run_one() { # BIN NAME IDLE_COUNT REPEAT
	local bin=$1 name=$2 idle=$3 rep=$4 port per k deadline line
	port=$(free_port)
	printf 'listener %s\nallow_anonymous true\nmax_connections -1\nsys_interval 1\n' "$port" >"$TMP/conf"
	# One worker (builds from before worker threads have no -t and run one anyway).
	local one=()
	"$bin" -h 2>&1 | grep -q -- '-t THREADS' && one=(-t 1)
	taskset -c 0 "$bin" -c "$TMP/conf" "${one[@]}" >"$TMP/broker.log" 2>&1 &
	BROKER_PID=$!
	wait_port "$port" || { echo "idle.sh: $name did not start" >&2; cat "$TMP/broker.log" >&2; exit 1; }
	if [ "$idle" -gt 0 ]; then
		per=$(((idle + 3) / 4))
		for k in 1 2 3 4; do
			taskset -c 1 "$BENCH" connections -h "127.0.0.$k" -p "$port" -c "$per" \
				-d 3600 --connect-rate 20000 --id-prefix "idle$k-" --json \
				>"$TMP/idle$k.out" 2>&1 &
			IDLE_PIDS+=($!)
		done
		deadline=$((SECONDS + 60))
		while [ "$(clients_connected "$port")" -lt "$idle" ]; do
			[ $SECONDS -lt $deadline ] || { echo "idle.sh: idle connections not all up" >&2; exit 1; }
			sleep 1
		done
		sleep "$SETTLE" # past the connects' own bursts of work
	fi
	line=$(taskset -c 1 "$BENCH" fanout -p "$port" -P "$PUBS" -S "$SUBS" -r $((RATE / SUBS)) \
		-d "$DURATION" -w 1 --broker-pid "$BROKER_PID" --json \
		--label "idle=$idle;broker=$name;rep=$rep")
	echo "$line" >>"$OUT"
	echo "$line" | $PY -c '
import json, sys
r = json.loads(sys.stdin.read())
lat, b = r["latency_us"], r["broker"]
print("%-28s delivered/s %9.0f  p50 %6.0f us  p99 %6.0f us  p99.9 %6.0f us  max %6.0f us  "
      "CPU/delivery %.3f us  RSS %.1f MiB" % (r["label"], r["delivered_per_s"], lat["p50"],
      lat["p99"], lat["p999"], lat["max"], b["cpu_us_per_msg"], b["rss_kb"] / 1024))'
	cleanup
}

echo "{\"meta\": {\"date\": \"$(date -u '+%Y-%m-%d %H:%M UTC')\", \"idle\": $IDLE, \"rate\": $RATE," \
	"\"binaries\": \"$*\", \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}}" >"$OUT"
for rep in $(seq 1 "$REPEATS"); do
	for bin in "$@"; do
		name=$(basename "$(dirname "$(readlink -f "$bin")")")/$(basename "$bin")
		run_one "$bin" "$name" 0 "$rep"
		run_one "$bin" "$name" "$IDLE" "$rep"
	done
done
echo "results: $OUT"
