# shellcheck shell=bash
# Shell helpers the bench scripts share (sourced by compare.sh and scale.sh; needs $PY).
#   free_port           prints a free TCP port on 127.0.0.1
#   wait_port PORT      true once something accepts connections on it (at most 5 s)
#   stop_broker         stops the broker whose PID is $BROKER_PID: SIGTERM, 5 s, then SIGKILL
#   cpu_count LIST      the number of CPUs in a taskset list such as 0-3,8

free_port() {
	$PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
	$PY - "$1" <<'PYEOF'
import socket, sys, time
deadline = time.time() + 5
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PYEOF
}

stop_broker() {
	[ -n "${BROKER_PID:-}" ] || return 0
	kill "$BROKER_PID" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$BROKER_PID" 2>/dev/null || true
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=""
}

cpu_count() {
	$PY -c '
import sys
n = 0
for part in sys.argv[1].split(","):
    lo, _, hi = part.partition("-")
    n += int(hi or lo) - int(lo) + 1
print(n)' "$1"
}
