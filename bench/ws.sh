#!/bin/bash
# What WebSockets cost: fan-out through a `protocol websockets` listener against the same
# broker's TCP one, and the time one large message takes to reach a WebSocket subscriber,
# Starling and Mosquitto alternating in one run.
#
#   bench/ws.sh [--repeats R] [--duration S] [--size BYTES] [--brokers starling,mosquitto]
#
# Each broker runs on CPU 0 with one thread (Starling: worker_threads 1), the load on CPU 1.
#   fan-out  fanout -P 1 -S 50 -q 0 -s 16 at saturation, TCP port then WebSocket port (--ws),
#            R rounds, every broker in each round (Mosquitto 2.0.11's WebSocket listener
#            is too slow to be worth minutes of fan-out: it only runs the large message)
#   large    bench/ws_large.py: a TCP publisher sends one message of --size bytes (2 MiB),
#            a WebSocket subscriber times its arrival; R times for Starling, once for Mosquitto
# Prints one line per run and writes the JSON lines to bench/results/ws-DATE.jsonl.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
BIN=${STARLING_BIN:-$HERE/../build}
BENCH=$BIN/starling-bench
REPEATS=3
DURATION=3
SIZE=$((2 << 20))
BROKERS=starling,mosquitto
while [ $# -gt 0 ]; do
	case "$1" in
	--repeats) REPEATS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--size) SIZE=$2; shift 2 ;;
	--brokers) BROKERS=$2; shift 2 ;;
	-h | --help) sed -n '2,15p' "$0"; exit 0 ;;
	*) echo "ws.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -x "$BENCH" ] && [ -x "$BIN/starlingd" ] || { echo "ws.sh: build first (make all)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/starling-ws-bench.XXXXXX)
BROKER_PID=""
cleanup() { stop_broker; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$HERE/results"
OUT=$HERE/results/ws-$(date -u +%Y%m%d-%H%M%S).jsonl

# start BROKER: a TCP listener ($TCP) and a WebSocket one ($WS).
start() {
	local broker=$1 conf=$WORK/$1.conf
	TCP=$(free_port)
	WS=$(free_port)
	cat >"$conf" <<CONF
allow_anonymous true
max_connections -1
set_tcp_nodelay true
listener $TCP 127.0.0.1
listener $WS 127.0.0.1
protocol websockets
CONF
	if [ "$broker" = starling ]; then
		echo "worker_threads 1" >>"$conf"
		taskset -c 0 "$BIN/starlingd" -c "$conf" >"$WORK/$broker.log" 2>&1 &
	else
		taskset -c 0 /usr/sbin/mosquitto -c "$conf" >"$WORK/$broker.log" 2>&1 &
	fi
	BROKER_PID=$!
	wait_port "$TCP" && wait_port "$WS" || { cat "$WORK/$broker.log" >&2; exit 1; }
}

# run LABEL ARGS...: one starling-bench run on CPU 1, its JSON line kept, a summary printed.
run() {
	local label=$1 line
	shift
	line=$(taskset -c 1 timeout -k 5 120 "$BENCH" "$@" --broker-pid "$BROKER_PID" --json \
		--label "$label" 2>"$WORK/bench.err") || true
	[ -n "$line" ] || line="{\"ok\":false,\"label\":\"$label\",\"error\":\"$(head -c 200 "$WORK/bench.err")\"}"
	echo "$line" >>"$OUT"
	$PY - "$line" <<'PYEOF'
import json, sys
r = json.loads(sys.argv[1])
if not r.get("ok"):
    print("  %-32s FAILED %s" % (r.get("label"), r.get("error")))
else:
    print("  %-32s delivered %.2fM/s, broker %.3f us/msg, loss %d, p50 %.0f us, bench cpu %.0f%%"
          % (r["label"], r["delivered_per_s"] / 1e6, r["broker"]["cpu_us_per_msg"], r["loss"],
             r["latency_us"]["p50"], r["bench"]["cpu_pct"]))
PYEOF
}

# large BROKER REPEATS: ws_large.py on CPU 1.
large() {
	local line
	line=$(taskset -c 1 timeout -k 5 600 "$PY" "$HERE/ws_large.py" --ws-port "$WS" \
		--tcp-port "$TCP" --size "$SIZE" --repeats "$2" --timeout 300 --label "$1-large" |
		tee /dev/stderr | tail -1) || line="{\"ok\":false,\"label\":\"$1-large\"}"
	echo "$line" >>"$OUT"
}

fan=(fanout -P 1 -S 50 -q 0 -s 16 -d "$DURATION" -w 0.5)
echo "ws.sh: results in $OUT (the machine may be shared: rounds alternate TCP and WebSockets)"
for round in $(seq 1 "$REPEATS"); do
	echo "round $round"
	start starling
	run "starling-tcp-fanout50-q0-16" "${fan[@]}" -p "$TCP"
	run "starling-ws-fanout50-q0-16" "${fan[@]}" -p "$WS" --ws
	stop_broker
done
for broker in ${BROKERS//,/ }; do
	start "$broker"
	large "$broker" "$([ "$broker" = starling ] && echo "$REPEATS" || echo 1)"
	stop_broker
done
