#!/bin/bash
# A bridge forwarding fanin50-q0-16 to a remote Starling: messages per second through the
# bridge and the bridging broker's CPU per bridged message, with Starling or Mosquitto as the
# bridging broker, alternating in one run.
#
#   bench/bridge.sh [--repeats R] [--duration S] [--rate N] [--brokers starling,mosquitto]
#
# Brokers: A, the bridging one (Starling with worker_threads 1, or Mosquitto 2.0.11), on
# CPU 0, with `connection` to B and `topic bench/# out 0`; B, the remote, always Starling
# (worker_threads 1), on CPU 1 with both load generators.
#   publishers  starling-bench fanin -P 50 -S 0 -q 0 -s 16 on A (S + 3 s, --broker-pid A):
#               what A takes in, and A's CPU per message
#   subscriber  starling-bench fanin -P 0 -S 1 --ext-publishers 50 on B (S s window): the
#               messages that crossed the bridge, checked per publisher for order and loss
# --rate N publishes N messages/s in total (a realistic load); without it, as fast as A takes
# them (saturation: QoS 0 past what the bridge's connection drains is dropped by A).
# Prints one line per run and writes the JSON lines to bench/results/bridge-DATE.jsonl.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
BIN=${STARLING_BIN:-$HERE/../build}
BENCH=$BIN/starling-bench
REPEATS=3
DURATION=5
RATE=
BROKERS=starling,mosquitto
while [ $# -gt 0 ]; do
	case "$1" in
	--repeats) REPEATS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	--brokers) BROKERS=$2; shift 2 ;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "bridge.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -x "$BENCH" ] && [ -x "$BIN/starlingd" ] || { echo "bridge.sh: build first (make all)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/starling-bridge-bench.XXXXXX)
BROKER_PID=""
REMOTE_PID=""
cleanup() {
	stop_broker
	BROKER_PID=$REMOTE_PID stop_broker
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$HERE/results"
OUT=$HERE/results/bridge-$(date -u +%Y%m%d-%H%M%S).jsonl

# The remote B: a Starling on CPU 1.
start_remote() {
	RPORT=$(free_port)
	cat >"$WORK/remote.conf" <<CONF
listener $RPORT 127.0.0.1
allow_anonymous true
worker_threads 1
max_queued_messages 100000
CONF
	taskset -c 1 "$BIN/starlingd" -c "$WORK/remote.conf" >"$WORK/remote.log" 2>&1 &
	REMOTE_PID=$!
	wait_port "$RPORT" || { echo "bridge.sh: the remote did not start" >&2; exit 1; }
}

# The bridging broker A ($1: starling or mosquitto) on CPU 0, bridged to B.
start_bridging() {
	local broker=$1 conf=$WORK/$1.conf
	PORT=$(free_port)
	cat >"$conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
max_queued_messages 100000
CONF
	[ "$broker" = starling ] && echo "worker_threads 1" >>"$conf"
	cat >>"$conf" <<CONF
connection bench
address 127.0.0.1:$RPORT
remote_clientid bench-bridge-$broker
cleansession true
notifications false
topic bench/# out 0
CONF
	if [ "$broker" = starling ]; then
		taskset -c 0 "$BIN/starlingd" -c "$conf" >"$WORK/$broker.log" 2>&1 &
	else
		taskset -c 0 /usr/sbin/mosquitto -c "$conf" >"$WORK/$broker.log" 2>&1 &
	fi
	BROKER_PID=$!
	wait_port "$PORT" || { echo "bridge.sh: $broker did not start" >&2; exit 1; }
	# The bridge's SUBSCRIBE-less out topic needs only its CONNECT: give it a moment.
	sleep 1
}

run_once() {
	local broker=$1 round=$2 pubs subs
	start_remote
	start_bridging "$broker"
	taskset -c 1 "$BENCH" fanin -P 0 -S 1 --ext-publishers 50 -q 0 -s 16 -p "$RPORT" \
		-d "$DURATION" -w 2 --drain 1 --broker-pid "$REMOTE_PID" --id-prefix "bs$round" \
		--label "bridge-sub-$broker" --json >"$WORK/sub.json" 2>"$WORK/sub.err" &
	subs=$!
	taskset -c 1 "$BENCH" fanin -P 50 -S 0 -q 0 -s 16 -p "$PORT" ${RATE:+-r "$RATE"} \
		-d "$((DURATION + 3))" -w 0 --drain 0 --broker-pid "$BROKER_PID" --id-prefix "bp$round" \
		--label "bridge-pub-$broker" --json >"$WORK/pub.json" 2>"$WORK/pub.err" &
	pubs=$!
	wait "$subs" || { echo "bridge.sh: subscriber failed: $(cat "$WORK/sub.err")" >&2; }
	wait "$pubs" || { echo "bridge.sh: publishers failed: $(cat "$WORK/pub.err")" >&2; }
	stop_broker
	BROKER_PID=$REMOTE_PID stop_broker
	REMOTE_PID=""
	cat "$WORK/sub.json" "$WORK/pub.json" >>"$OUT"
	$PY - "$broker" "$WORK/sub.json" "$WORK/pub.json" <<'PYEOF'
import json, sys
broker = sys.argv[1]
sub = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
pub = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
through = sub["delivered_per_s"]
sent = pub["sent_per_s"]
a_cpu = pub["broker"]["cpu_s"] / pub["duration_s"]
print("%-9s sent %9.0f/s  through the bridge %9.0f/s  A cpu %5.1f%%  A cpu per bridged "
      "message %.3f us  B cpu per message %.3f us" % (
          broker, sent, through, 100 * a_cpu,
          (a_cpu * 1e6 / through) if through else float("nan"),
          sub["broker"]["cpu_us_per_msg"]))
PYEOF
}

for r in $(seq 1 "$REPEATS"); do
	for broker in ${BROKERS//,/ }; do
		run_once "$broker" "$r"
	done
done
echo "results: $OUT"
