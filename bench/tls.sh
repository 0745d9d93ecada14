#!/bin/bash
# What TLS costs: fan-out through a TLS listener against the same broker's plaintext one, and
# the broker CPU each TLS handshake takes, for Starling and Mosquitto, alternating in one run.
#
#   bench/tls.sh [--repeats R] [--duration S] [--conns N] [--brokers starling,mosquitto]
#
# Certificates (a CA and a server certificate for 127.0.0.1, one pair with ECDSA P-256 keys,
# one with RSA 2048) are made by the openssl command in a temporary directory. Each broker runs
# on CPU 0 with one thread (Starling: worker_threads 1), starling-bench on CPU 1.
#   fan-out     fanout -P 1 -S 50 -q 0 -s 16 at saturation, plaintext port then TLS port
#               (ECDSA certificate; TLS 1.3, OpenSSL's default suite), R rounds
#   handshakes  connections -c N --tls over TLS 1.3 for each key type: the broker CPU per
#               connection set up (TCP accept, handshake, CONNECT/CONNACK) is what one worker
#               spends per handshake, so 1e6 / it is the handshakes per second one worker can
#               take; the rate the bench reached is printed too (on one CPU the bench's own
#               handshakes, which verify the server's signature, may be the limit)
# Prints one line per run and writes the JSON lines to bench/results/tls-DATE.jsonl.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
BIN=${STARLING_BIN:-$HERE/../build}
BENCH=$BIN/starling-bench
REPEATS=3
DURATION=2
CONNS=1000
BROKERS=starling,mosquitto
while [ $# -gt 0 ]; do
	case "$1" in
	--repeats) REPEATS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--conns) CONNS=$2; shift 2 ;;
	--brokers) BROKERS=$2; shift 2 ;;
	-h | --help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "tls.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
[ -x "$BENCH" ] && [ -x "$BIN/starlingd" ] || { echo "tls.sh: build first (make all)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/starling-tls-bench.XXXXXX)
BROKER_PID=""
cleanup() { stop_broker; rm -rf "$WORK"; }
trap cleanup EXIT
mkdir -p "$HERE/results"
OUT=$HERE/results/tls-$(date -u +%Y%m%d-%H%M%S).jsonl

# make_certs KIND KEYARGS: $WORK/KIND/{ca.crt,server.crt,server.key}
make_certs() {
	local d=$WORK/$1
	shift
	mkdir -p "$d"
	openssl genpkey "$@" -out "$d/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$d/ca.key" -out "$d/ca.crt" -days 2 -subj "/CN=bench CA" \
		2>/dev/null
	openssl genpkey "$@" -out "$d/server.key" 2>/dev/null
	openssl req -new -key "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-out "$d/server.crt" -days 2 -extfile "$d/ext" 2>/dev/null
	chmod 755 "$d" && chmod 644 "$d"/*
}
make_certs ec -algorithm EC -pkeyopt ec_paramgen_curve:P-256
make_certs rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
chmod o+x "$WORK" # Mosquitto started as root reads the files as the user mosquitto

# start BROKER KIND: a plaintext listener ($PLAIN) and a TLS one ($TLS) with KIND's certificate.
start() {
	local broker=$1 kind=$2 conf=$WORK/$1.conf
	PLAIN=$(free_port)
	TLS=$(free_port)
	cat >"$conf" <<CONF
per_listener_settings false
allow_anonymous true
max_connections -1
set_tcp_nodelay true
listener $PLAIN 127.0.0.1
listener $TLS 127.0.0.1
certfile $WORK/$kind/server.crt
keyfile $WORK/$kind/server.key
CONF
	if [ "$broker" = starling ]; then
		echo "worker_threads 1" >>"$conf"
		taskset -c 0 "$BIN/starlingd" -c "$conf" >"$WORK/$broker.log" 2>&1 &
	else
		taskset -c 0 /usr/sbin/mosquitto -c "$conf" >"$WORK/$broker.log" 2>&1 &
	fi
	BROKER_PID=$!
	wait_port "$PLAIN" || { cat "$WORK/$broker.log" >&2; exit 1; }
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
    print("  %-40s FAILED %s" % (r.get("label"), r.get("error")))
elif r["scenario"] == "connections":
    b = r["broker"]
    print("  %-40s %d connections set up at %.0f/s; broker %.1f us each -> %.0f/s per worker"
          % (r["label"], r["connections"], r["connects_per_s"], b["setup_cpu_us_per_conn"],
             1e6 / b["setup_cpu_us_per_conn"] if b["setup_cpu_us_per_conn"] else 0))
else:
    print("  %-40s delivered %.2fM/s, broker %.3f us/msg, loss %d, bench cpu %.0f%%"
          % (r["label"], r["delivered_per_s"] / 1e6, r["broker"]["cpu_us_per_msg"], r["loss"],
             r["bench"]["cpu_pct"]))
PYEOF
}

fan=(fanout -P 1 -S 50 -q 0 -s 16 -d "$DURATION" -w 0.5 --outstanding 50000 --queue-max 10000
	--coalesce-us 100)
echo "tls.sh: results in $OUT"
for r in $(seq 1 "$REPEATS"); do
	for broker in ${BROKERS//,/ }; do
		start "$broker" ec
		run "fanout;$broker;plain;rep=$r" "${fan[@]}" -p "$PLAIN"
		run "fanout;$broker;tls;rep=$r" "${fan[@]}" -p "$TLS" --tls
		stop_broker
		for kind in ec rsa; do
			start "$broker" "$kind"
			run "handshakes;$broker;$kind;rep=$r" connections -c "$CONNS" -d 0.5 -p "$TLS" \
				--tls --connect-parallel 64
			stop_broker
		done
	done
done
