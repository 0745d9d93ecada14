#!/bin/bash
# A Starling cluster on NATS (issue 14) against nats-server's own MQTT listener, on the same
# streams: cross-node fan-out and pairs across nodes, delivered messages per second and CPU
# per delivery on each node, alternating in one run.
#
#   bench/cluster.sh [--repeats R] [--duration S] [--rate N] [--subs K] [--pairs N]
#                    [--nodes 2|3] [--systems starling,nats] [--scenarios fanout,pairs]
#
# Systems (everything on 127.0.0.1, every process started here and stopped by its PID):
#   starling  3 nats-server processes (a full mesh of routes, no JetStream: the first
#             milestone does not use it) and 3 starlingd (build/starlingd, worker_threads 1),
#             node i with cluster_nats_url listing NATS server i first
#   nats      3 nats-server processes with routes, JetStream (MQTT needs it) and an MQTT
#             listener each (`mqtt { listen }`; it speaks MQTT 3.1.1): the peer to beat
# --nodes 2 runs two of each (what a third node adds: compare with --nodes 3).
# Scenarios (QoS 0, 16-byte payloads, MQTT 3.1.1, starling-bench):
#   fanout    one publisher on node A at --rate N messages/s (default 5000) on one topic, K
#             subscribers (default 10) on every node: each message is delivered K times per
#             node, published on NATS once by A and received once by every other node
#   pairs     N publishers on node A (default 20), each on its own topic at --rate/N, and their
#             N subscribers on node B: every message crosses once
# Publishers: `starling-bench fanout -P .. -S 0 -r RATE` (S + 5 s); subscribers: one
# `starling-bench fanout -P 0 -S K --ext-publishers ..` per node with --broker-pid that node
# (S s window after a 2 s warm-up), which checks order and loss per publisher and gives that
# node's CPU time over its window per message delivered on it. The nats-server processes of
# the starling system are sampled from /proc/PID/stat over the same window.
# A fixed rate, not saturation: a publisher on one node cannot see the subscribers on the
# others, so only a rate keeps both systems on the same load; raise --rate to find where one
# stops keeping up (loss, then gaps, appear in the lines).
# Prints one line per node and one total per run; JSON lines in bench/results/cluster-DATE.jsonl.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
BIN=${STARLING_BIN:-$HERE/../build}
BENCH=$BIN/starling-bench
NATS=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
REPEATS=2
DURATION=4
RATE=5000
SUBS=10
PAIRS=20
NODES=3
SYSTEMS=starling,nats
SCENARIOS=fanout,pairs
WARMUP=2
while [ $# -gt 0 ]; do
	case "$1" in
	--repeats) REPEATS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--rate) RATE=$2; shift 2 ;;
	--subs) SUBS=$2; shift 2 ;;
	--pairs) PAIRS=$2; shift 2 ;;
	--nodes) NODES=$2; shift 2 ;;
	--systems) SYSTEMS=$2; shift 2 ;;
	--scenarios) SCENARIOS=$2; shift 2 ;;
	-h | --help) sed -n '2,32p' "$0"; exit 0 ;;
	*) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -x "$BENCH" ] || { echo "cluster.sh: build first (make all)" >&2; exit 1; }
[ -x "$NATS" ] || { echo "cluster.sh: no nats-server (make deps)" >&2; exit 1; }
case "$NODES" in 2 | 3) ;; *) echo "cluster.sh: --nodes 2 or 3" >&2; exit 2 ;; esac
case ",$SYSTEMS," in *,starling,*) [ -x "$BIN/starlingd" ] || {
	echo "cluster.sh: no $BIN/starlingd (make all)" >&2; exit 1; } ;; esac

WORK=$(mktemp -d /tmp/starling-cluster-bench.XXXXXX)
NATS_PIDS=()
NODE_PIDS=()
BENCH_PIDS=()
stop_pid() {
	BROKER_PID=$1 stop_broker
}
stop_all() {
	local p
	for p in "${BENCH_PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	for p in "${NODE_PIDS[@]}"; do stop_pid "$p"; done
	for p in "${NATS_PIDS[@]}"; do stop_pid "$p"; done
	BENCH_PIDS=()
	NODE_PIDS=()
	NATS_PIDS=()
}
cleanup() {
	stop_all
	if [ -n "${KEEP_WORK:-}" ]; then echo "cluster.sh: logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$HERE/results"
OUT=$HERE/results/cluster-$(date -u +%Y%m%d-%H%M%S).jsonl

# Seconds of CPU (utime + stime) of the PIDs given, summed.
cpu_of() {
	$PY - "$@" <<'PYEOF'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
total = 0
for pid in sys.argv[1:]:
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total += int(fields[11]) + int(fields[12])
print("%.3f" % (total / hz))
PYEOF
}

# Waits until every nats-server answers /healthz with ok and has routes to all the others.
wait_nats() {
	$PY - "$NODES" "$@" <<'PYEOF'
import json, sys, time, urllib.request
n = int(sys.argv[1])
ports = sys.argv[2:]
deadline = time.time() + 30
def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path), timeout=1) as r:
        return json.loads(r.read().decode())
while time.time() < deadline:
    try:
        if all(get(p, "/healthz").get("status") == "ok"
               and len(get(p, "/routez").get("routes") or []) == n - 1 for p in ports):
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.1)
sys.exit(1)
PYEOF
}

# Starts NODES nats-servers; $1 = starling (no JetStream, no MQTT) or nats (JetStream, MQTT).
# Sets NATS_PORTS (client), MQTT_PORTS, HTTP_PORTS, NATS_PIDS.
start_nats() {
	local system=$1 i j routes conf
	NATS_PORTS=()
	MQTT_PORTS=()
	HTTP_PORTS=()
	local cports=()
	for i in $(seq 0 $((NODES - 1))); do
		NATS_PORTS+=("$(free_port)")
		cports+=("$(free_port)")
		HTTP_PORTS+=("$(free_port)")
		MQTT_PORTS+=("$(free_port)")
	done
	for i in $(seq 0 $((NODES - 1))); do
		routes=""
		for j in $(seq 0 $((NODES - 1))); do
			[ "$i" = "$j" ] || routes="$routes${routes:+, }nats-route://127.0.0.1:${cports[$j]}"
		done
		conf=$WORK/nats$i.conf
		rm -rf "$WORK/js$i"  # a fresh JetStream store: an old run's meta group would stall
		mkdir -p "$WORK/js$i"
		cat >"$conf" <<CONF
server_name: n$i
listen: 127.0.0.1:${NATS_PORTS[$i]}
http: 127.0.0.1:${HTTP_PORTS[$i]}
cluster { name: bench, listen: 127.0.0.1:${cports[$i]}, routes: [$routes] }
CONF
		if [ "$system" = nats ]; then
			cat >>"$conf" <<CONF
jetstream { store_dir: "$WORK/js$i" }
mqtt { listen: 127.0.0.1:${MQTT_PORTS[$i]} }
CONF
		fi
		"$NATS" -c "$conf" -l "$WORK/nats$i.log" </dev/null >/dev/null 2>&1 &
		NATS_PIDS+=($!)
	done
	wait_nats "${HTTP_PORTS[@]}" || {
		echo "cluster.sh: the NATS cluster did not form" >&2
		tail "$WORK"/nats*.log >&2
		exit 1
	}
	if [ "$system" = nats ]; then
		# The first MQTT client makes the servers create their JetStream streams; clients
		# arriving at once meanwhile may be closed: one publish per server first, retried.
		for i in $(seq 0 $((NODES - 1))); do
			wait_port "${MQTT_PORTS[$i]}" || { echo "cluster.sh: no MQTT listener on n$i" >&2; exit 1; }
			for _ in $(seq 1 60); do
				mosquitto_pub -h 127.0.0.1 -p "${MQTT_PORTS[$i]}" -q 1 -t bench/warm -m x \
					2>/dev/null && break
				sleep 0.5
			done
		done
	fi
}

# Starts NODES starlingd, node i on NATS server i first. Sets PORTS (MQTT) and NODE_PIDS.
start_starling() {
	local i j urls conf
	PORTS=()
	for i in $(seq 0 $((NODES - 1))); do
		PORTS+=("$(free_port)")
		urls="nats://127.0.0.1:${NATS_PORTS[$i]}"
		for j in $(seq 0 $((NODES - 1))); do
			[ "$i" = "$j" ] || urls="$urls,nats://127.0.0.1:${NATS_PORTS[$j]}"
		done
		conf=$WORK/node$i.conf
		cat >"$conf" <<CONF
listener ${PORTS[$i]} 127.0.0.1
allow_anonymous true
worker_threads 1
max_queued_messages 100000
cluster_nats_url $urls
cluster_name bench
cluster_node_id node$i
CONF
		"$BIN/starlingd" -c "$conf" >"$WORK/node$i.log" 2>&1 &
		NODE_PIDS+=($!)
	done
	for i in $(seq 0 $((NODES - 1))); do
		wait_port "${PORTS[$i]}" || {
			echo "cluster.sh: node$i did not start" >&2
			cat "$WORK/node$i.log" >&2
			exit 1
		}
		for _ in $(seq 1 100); do
			grep -q "Cluster: node .* connected to NATS" "$WORK/node$i.log" && break
			sleep 0.05
		done
		grep -q "Cluster: node .* connected to NATS" "$WORK/node$i.log" || {
			echo "cluster.sh: node$i never connected to NATS" >&2; cat "$WORK/node$i.log" >&2; exit 1; }
	done
}

# One run: $1 system, $2 scenario, $3 round.
run_once() {
	local system=$1 scenario=$2 round=$3 i pids=() ports=() bpids=() nats_cpu0 nats_cpu1 t0 t1
	start_nats "$system"
	if [ "$system" = starling ]; then
		start_starling
		ports=("${PORTS[@]}")
		bpids=("${NODE_PIDS[@]}")
	else
		ports=("${MQTT_PORTS[@]}")
		bpids=("${NATS_PIDS[@]}")
	fi
	local npub topics subs_on
	if [ "$scenario" = fanout ]; then
		npub=1 topics=1 subs_on=$(seq 0 $((NODES - 1)))
	else
		npub=$PAIRS topics=$PAIRS subs_on=1
	fi
	for i in $subs_on; do
		local k=$SUBS
		[ "$scenario" = pairs ] && k=$PAIRS
		"$BENCH" fanout -P 0 -S "$k" -t "$topics" --ext-publishers "$npub" -q 0 -s 16 \
			-p "${ports[$i]}" -d "$DURATION" -w "$WARMUP" --drain 1 --broker-pid "${bpids[$i]}" \
			--id-prefix "cs$round$i" --label "cluster-$system-$scenario-sub$i" --json \
			>"$WORK/sub$i.json" 2>"$WORK/sub$i.err" &
		pids+=($!)
		BENCH_PIDS+=($!)
	done
	# The publishers outlast the subscribers' windows (setup, warm-up, window, drain).
	"$BENCH" fanout -P "$npub" -S 0 -t "$topics" -q 0 -s 16 -p "${ports[0]}" -r "$RATE" \
		-d "$((DURATION + WARMUP + 4))" -w 0 --drain 0 --broker-pid "${bpids[0]}" \
		--id-prefix "cp$round" --label "cluster-$system-$scenario-pub" --json \
		>"$WORK/pub.json" 2>"$WORK/pub.err" &
	local pub=$!
	BENCH_PIDS+=("$pub")
	# The NATS servers' CPU over (about) the subscribers' window: after setup and warm-up.
	sleep "$((WARMUP + 1))"
	t0=$(date +%s.%N)
	nats_cpu0=$(cpu_of "${NATS_PIDS[@]}")
	sleep "$((DURATION - 1))"
	nats_cpu1=$(cpu_of "${NATS_PIDS[@]}")
	t1=$(date +%s.%N)
	local ok=1
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { ok=0; echo "cluster.sh: subscriber failed: $(cat "$WORK"/sub*.err)" >&2; }
	done
	wait "$pub" || { ok=0; echo "cluster.sh: publisher failed: $(cat "$WORK/pub.err")" >&2; }
	BENCH_PIDS=()
	# What the NATS servers carried (client and route messages, in and out) over the run.
	$PY - "${HTTP_PORTS[@]}" >"$WORK/varz.json" <<'PYEOF'
import json, sys, urllib.request
out = []
for port in sys.argv[1:]:
    with urllib.request.urlopen("http://127.0.0.1:%s/varz" % port, timeout=2) as r:
        v = json.loads(r.read().decode())
    out.append({k: v.get(k) for k in ("server_name", "in_msgs", "out_msgs", "in_bytes",
                                      "out_bytes", "slow_consumers")})
print(json.dumps(out))
PYEOF
	stop_all
	[ "$ok" = 1 ] || return 0
	local files=()
	for i in $subs_on; do files+=("$WORK/sub$i.json"); done
	# shellcheck disable=SC2086  # $subs_on: node numbers, split on purpose
	$PY - "$system" "$scenario" "$NODES" "$RATE" "$nats_cpu0" "$nats_cpu1" "$t0" "$t1" \
		"$WORK/pub.json" "$OUT" "$WORK/varz.json" $subs_on -- "${files[@]}" <<'PYEOF'
import json, sys
a = sys.argv[1:]
varz = json.loads(open(a.pop(10)).read())
system, scenario, nodes, rate = a[0], a[1], int(a[2]), int(a[3])
nats_cpu = (float(a[5]) - float(a[4])) / (float(a[7]) - float(a[6]))
pub = json.loads(open(a[8]).read().strip().splitlines()[-1])
out = a[9]
sep = a.index("--")
idx = [int(x) for x in a[10:sep]]
subs = [json.loads(open(f).read().strip().splitlines()[-1]) for f in a[sep + 1:]]
total_rate = 0.0
node_cpu = 0.0
lines = []
for i, s in zip(idx, subs):
    d = s["delivered_per_s"]
    cpu = s["broker"]["cpu_s"] / s["duration_s"]
    total_rate += d
    lines.append("  node%d: %9.0f deliveries/s  cpu %5.1f%%  %.2f us per delivery  "
                 "dup %d ooo %d gaps %d  p50 %.0f us p99 %.0f us"
                 % (i, d, 100 * cpu, cpu * 1e6 / d if d else float("nan"), s["duplicates"],
                    s["out_of_order"], s["bench"]["gap_lost"], s["latency_us"]["p50"],
                    s["latency_us"]["p99"]))
    node_cpu += cpu
# Node A's CPU when it has no subscribers of its own (pairs): the publisher's reading.
if 0 not in idx:
    a_cpu = pub["broker"]["cpu_s"] / pub["duration_s"]
    lines.insert(0, "  node0: publishers only         cpu %5.1f%% (over the publishers' run)"
                 % (100 * a_cpu))
    node_cpu += a_cpu
if system == "starling":
    total_cpu = node_cpu + nats_cpu
    tail = "starlingd %.1f%% + nats-server %.1f%%" % (100 * node_cpu, 100 * nats_cpu)
else:
    total_cpu = nats_cpu
    tail = "nats-server %.1f%%" % (100 * nats_cpu)
print("%s %s, %d nodes, %d msg/s published: %.0f deliveries/s, cpu %s = %.2f us per delivery"
      % (system, scenario, nodes, pub["sent_per_s"], total_rate, tail,
         total_cpu * 1e6 / total_rate if total_rate else float("nan")))
lines.append("  nats-servers over the whole run: in %s msgs, out %s msgs, slow consumers %s"
             % ("+".join(str(v["in_msgs"]) for v in varz),
                "+".join(str(v["out_msgs"]) for v in varz),
                sum(v["slow_consumers"] or 0 for v in varz)))
print("\n".join(lines))
summary = {"system": system, "scenario": scenario, "nodes": nodes, "rate": rate,
           "published_per_s": pub["sent_per_s"], "delivered_per_s": total_rate,
           "node_cpu": node_cpu, "nats_cpu": nats_cpu, "total_cpu": total_cpu,
           "us_per_delivery": total_cpu * 1e6 / total_rate if total_rate else None,
           "nats_varz": varz}
with open(out, "a") as f:
    for s in subs + [pub]:
        f.write(json.dumps(s) + "\n")
    f.write(json.dumps({"summary": summary}) + "\n")
PYEOF
}

for r in $(seq 1 "$REPEATS"); do
	for scenario in ${SCENARIOS//,/ }; do
		for system in ${SYSTEMS//,/ }; do
			run_once "$system" "$scenario" "$r"
		done
	done
done
echo "results: $OUT"
