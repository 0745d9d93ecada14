#!/usr/bin/env bash
# Start-up with a large persistence directory (issue 10: "1M retained messages and 100k sessions
# load in seconds"). For each worker count: starling-store-gen writes the directory (one base
# segment per worker, sessions on their home worker's), starlingd starts on it, and a client
# measures, from the moment starlingd is executed:
#   listen     the first TCP connection accepted;
#   retained   a CONNACK, then one known retained message (the last one written) read back
#              through a SUBSCRIBE, payload checked;
#   session    a persistent session's client id (gen-<repeat - 1>, clean session 0: each
#              start takes a session whose queue the ones before did not empty) connects with
#              session present set and receives its queued messages;
# then the broker's RSS (VmRSS) and peak (VmHWM), and its log lines about the load. The files
# are in the page cache (just written) unless --cold, which drops the caches first (root).
# Results: one JSON line per run in bench/results/persist-load-<stamp>.jsonl and a table.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/persist-load.sh [options]
  --workers LIST     worker_threads to measure, a directory written for each (1,2)
  --retained N       retained messages (1000000)
  --payload BYTES    their payload size (256)
  --sessions N       persistent sessions (100000)
  --subs N           subscriptions per session (10)
  --queued N         queued QoS 1 messages per session (3)
  --repeats N        starts per worker count, on the same directory (1)
  --dir-base DIR     where the directories are made (/var/tmp: the disk, not tmpfs)
  --broker-cpu LIST  taskset CPUs for starlingd (all: 0-<nproc - 1>)
  --timeout SEC      bound on each start-up (300)
  --cold             drop the page cache before each start (needs root; slows other work)
  --keep             keep the directories (printed)
  --bin DIR          where starlingd and starling-store-gen are (build)
  --out DIR          results directory (bench/results)
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
WORKERS=1,2
RETAINED=1000000
PAYLOAD=256
SESSIONS=100000
SUBS=10
QUEUED=3
REPEATS=1
DIR_BASE=/var/tmp
BROKER_CPU=0-$(($(nproc) - 1))
TIMEOUT=300
COLD=0
KEEP=0
BIN=$ROOT/build
OUT=$ROOT/bench/results

while [ $# -gt 0 ]; do
	case "$1" in
	--workers) WORKERS=$2; shift 2 ;;
	--retained) RETAINED=$2; shift 2 ;;
	--payload) PAYLOAD=$2; shift 2 ;;
	--sessions) SESSIONS=$2; shift 2 ;;
	--subs) SUBS=$2; shift 2 ;;
	--queued) QUEUED=$2; shift 2 ;;
	--repeats) REPEATS=$2; shift 2 ;;
	--dir-base) DIR_BASE=$2; shift 2 ;;
	--broker-cpu) BROKER_CPU=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--cold) COLD=1; shift ;;
	--keep) KEEP=1; shift ;;
	--bin) BIN=$(cd "$2" && pwd); shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "persist-load.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done

die() {
	echo "persist-load.sh: $*" >&2
	exit 1
}

[ -x "$BIN/starlingd" ] || die "$BIN/starlingd not found: build it first (make all)"
[ -x "$BIN/starling-store-gen" ] || die "$BIN/starling-store-gen not found: build it first (make all)"
[ -d "$DIR_BASE" ] || die "--dir-base $DIR_BASE: not a directory"
if [ "$(stat -f -c %T "$DIR_BASE")" = tmpfs ]; then
	echo "persist-load.sh: warning: $DIR_BASE is tmpfs, not a disk" >&2
fi
if [ "$COLD" = 1 ] && [ "$(id -u)" != 0 ]; then
	die "--cold needs root (it writes /proc/sys/vm/drop_caches)"
fi

STAMP=$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
RESULTS=$OUT/persist-load-$STAMP.jsonl
WORK=$(mktemp -d /tmp/starling-persist-load.XXXXXX)
DB=""
BROKER_PID=""
FAILED=0

cleanup() {
	stop_broker
	if [ -n "$DB" ] && [ "$KEEP" = 0 ]; then rm -rf "$DB"; fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The client side of one start: waits for the port, reads the probe and the session, prints
# a JSON object of times (seconds since $1, a CLOCK_MONOTONIC reading) and findings.
probe() {
	$PY - "$@" <<'PYEOF'
import json, os, socket, struct, sys, time

t0, port, topic, prefix, timeout = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], \
    sys.argv[4].encode(), float(sys.argv[5])
queued, pid, session = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
deadline = t0 + timeout
out = {}

def s(x):
    b = x.encode()
    return struct.pack("!H", len(b)) + b

def pkt(first, body):
    rl, n = bytearray(), len(body)
    while True:
        d, n = n % 128, n // 128
        rl.append(d | (0x80 if n else 0))
        if not n:
            break
    return bytes([first]) + bytes(rl) + body

class Conn:
    def __init__(self, sock):
        self.sock, self.buf = sock, bytearray()
    def packet(self):
        while True:
            if len(self.buf) >= 2:
                mult, n, i = 1, 0, 1
                while i < len(self.buf):
                    n += (self.buf[i] & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not self.buf[i - 1] & 0x80:
                        break
                else:
                    i = None
                if i is not None and self.buf[i - 1] & 0x80 == 0 and len(self.buf) >= i + n:
                    first, body = self.buf[0], bytes(self.buf[i:i + n])
                    del self.buf[:i + n]
                    return first, body
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer within the timeout")
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("the broker closed the connection")
            self.buf += data

def connect(client, clean):
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=1)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError("the broker never accepted a connection")
            try:
                os.kill(pid, 0)
            except OSError:
                raise RuntimeError("starlingd exited before accepting a connection")
            time.sleep(0.002)
    c = Conn(sock)
    sock.sendall(pkt(0x10, s("MQTT") + bytes([4, 0x02 if clean else 0x00]) + struct.pack("!H", 60)
                     + s(client)))
    return c

try:
    c = connect("persist-load-probe", True)
    out["listen_s"] = time.monotonic() - t0
    first, body = c.packet()
    if first >> 4 != 2 or body[1] != 0:
        raise RuntimeError("CONNACK %r" % body)
    out["connack_s"] = time.monotonic() - t0
    c.sock.sendall(pkt(0x82, struct.pack("!H", 1) + s(topic) + b"\x00"))
    while True:
        first, body = c.packet()
        if first >> 4 == 3:
            tl = struct.unpack("!H", body[:2])[0]
            off = 2 + tl + (2 if (first >> 1) & 3 else 0)
            if body[2:2 + tl].decode() != topic or not body[off:].startswith(prefix):
                raise RuntimeError("wrong retained message on %r: %r" % (topic, body[:80]))
            out["retained_s"] = time.monotonic() - t0
            out["retained_flag"] = bool(first & 1)
            break
    c.sock.sendall(b"\xe0\x00")
    c.sock.close()
    # A stored session: present, and its queued messages delivered (acknowledged).
    c = connect(session, False)
    first, body = c.packet()
    if first >> 4 != 2 or body[1] != 0:
        raise RuntimeError("CONNACK %r" % body)
    out["session_present"] = bool(body[0] & 1)
    got = 0
    while got < queued:
        first, body = c.packet()
        if first >> 4 == 3:
            got += 1
            if (first >> 1) & 3:
                tl = struct.unpack("!H", body[:2])[0]
                c.sock.sendall(pkt(0x40, body[2 + tl:4 + tl]))
    out["session_s"] = time.monotonic() - t0
    out["queued_received"] = got
    c.sock.sendall(b"\xe0\x00")
    c.sock.close()
except Exception as e:  # reported, not raised: the script prints the broker's log
    out["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(out))
PYEOF
}

mono() {
	$PY -c 'import time; print(f"{time.monotonic():.6f}")'
}

rss_kb() {
	sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null || echo 0
}

echo "persist-load.sh: $RETAINED retained messages of $PAYLOAD B, $SESSIONS sessions ($SUBS subscriptions, $QUEUED queued each); workers $WORKERS; broker on CPUs $BROKER_CPU; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "persist-load.sh: results in $RESULTS"
for workers in ${WORKERS//,/ }; do
	DB=$(mktemp -d "$DIR_BASE/starling-persist-load.XXXXXX")
	gen=$("$BIN/starling-store-gen" "$DB" --workers "$workers" --retained "$RETAINED" \
		--payload "$PAYLOAD" --sessions "$SESSIONS" --subs "$SUBS" --queued "$QUEUED") ||
		die "starling-store-gen failed"
	topic=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["probe_topic"])' "$gen")
	prefix=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["probe_payload"])' "$gen")
	echo "  workers $workers: wrote $($PY -c 'import json,sys; g=json.loads(sys.argv[1]); print("%.0f MB, %d records in %.1f s" % (g["bytes"] / 1e6, g["records"], g["seconds"]))' "$gen")"
	for rep in $(seq 1 "$REPEATS"); do
		port=$(free_port)
		conf=$WORK/starling.conf
		log=$WORK/starlingd-$workers-$rep.log
		cat >"$conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
worker_threads $workers
persistence true
persistence_location $DB
CONF
		if [ "$COLD" = 1 ]; then
			sync
			echo 3 >/proc/sys/vm/drop_caches
		fi
		t0=$(mono)
		taskset -c "$BROKER_CPU" "$BIN/starlingd" -c "$conf" >"$log" 2>&1 &
		BROKER_PID=$!
		res=$(probe "$t0" "$port" "$topic" "$prefix" "$TIMEOUT" "$QUEUED" "$BROKER_PID" "gen-$((rep - 1))")
		rss=0
		hwm=0
		if kill -0 "$BROKER_PID" 2>/dev/null; then
			rss=$(rss_kb "$BROKER_PID" VmRSS)
			hwm=$(rss_kb "$BROKER_PID" VmHWM)
		else
			res=$($PY -c 'import json,sys; r=json.loads(sys.argv[1]); r.setdefault("error", "starlingd exited"); print(json.dumps(r))' "$res")
		fi
		stop_broker
		line=$($PY - "$res" "$gen" "$workers" "$rep" "$rss" "$hwm" "$(cut -d' ' -f1-3 /proc/loadavg)" \
			"$BROKER_CPU" "$COLD" "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" <<'PYEOF'
import json, sys
r = json.loads(sys.argv[1])
r.update({"gen": json.loads(sys.argv[2]), "workers": int(sys.argv[3]), "rep": int(sys.argv[4]),
          "rss_kb": int(sys.argv[5] or 0), "hwm_kb": int(sys.argv[6] or 0), "load": sys.argv[7],
          "broker_cpu": sys.argv[8], "cold": sys.argv[9] == "1", "repo_head": sys.argv[10]})
print(json.dumps(r, sort_keys=True))
PYEOF
)
		echo "$line" >>"$RESULTS"
		$PY - "$line" <<'PYEOF'
import json, sys
r = json.loads(sys.argv[1])
def t(k):
    return f"{r[k]:.2f} s" if k in r else "-"
print(f"    start {r['rep']}: listening {t('listen_s')}, CONNACK {t('connack_s')}, "
      f"retained message read {t('retained_s')}, session gen-{r['rep'] - 1} "
      f"{'present' if r.get('session_present') else 'NOT present'} with "
      f"{r.get('queued_received', 0)} queued at {t('session_s')}; "
      f"RSS {r['rss_kb'] / 1024:.0f} MiB (peak {r['hwm_kb'] / 1024:.0f} MiB)"
      + (f"; ERROR {r['error']}" if "error" in r else ""))
PYEOF
		if grep -qiE "^[0-9]*: (Persistence|.*persistence)" "$log"; then
			grep -iE "^[0-9]*: (Persistence|.*persistence)" "$log" | head -n 8 | sed 's/^/      log: /'
		fi
		if grep -q '"error"' <<<"$line"; then
			FAILED=1
			echo "    the broker's output:" >&2
			tail -n 20 "$log" | sed 's/^/      /' >&2
		fi
	done
	if [ "$KEEP" = 1 ]; then
		echo "  kept $DB"
	else
		rm -rf "$DB"
	fi
	DB=""
done
exit "$FAILED"
