#!/usr/bin/env bash
# Starling against FlashMQ and Mosquitto, side by side, on this machine (make bench-compare).
#
# For every scenario, each broker variant in turn is started fresh from a generated config on a
# free loopback port, pinned to one CPU, and loaded by starling-bench pinned to another; the
# variants alternate within each repeat so that drift in the machine hits all alike. Passes:
#   saturation  no rate: starling-bench keeps a bounded number of messages in flight and the
#               broker runs flat out (delivered/s, broker CPU per delivered message, RSS);
#   latency     a fixed rate of half Mosquitto's saturation delivered/s (p99 latency);
#   fixed rate  deliveries/s targets (20k, 200k, 2M by default; publish rate = target / fan-out):
#               broker CPU per delivery, p50 and p99, deliveries per TCP segment the broker sent
#               (bench/tcp_segs.py), and whether the broker held the rate at all.
# Variants: starling; flashmq-1t (thread_count 1) and flashmq (FlashMQ's own thread count: one
# per online CPU, which ignores the taskset mask, so 2 threads on the one broker CPU of a 2-vCPU
# machine), both with tcp_nodelay true; mosquitto (set_tcp_nodelay true). The saturation pass
# also runs flashmq-nagle and mosquitto-nagle: their defaults, Nagle included. FlashMQ is built
# outside the repository by bench/flashmq.sh; without it the FlashMQ variants are skipped.
# Persistence (issue 10): starling-persist (persistence true, persistence_sync always),
# starling-persist-never (persistence_sync never) and mosquitto-persist (persistence true, its
# own autosave_interval: a snapshot every 30 min and at exit, so no disk write per message),
# each with a fresh persistence_location under /var/tmp (the machine's disk, not tmpfs; removed
# with the broker), loaded with starling-bench --persistent (persistent sessions, cleaned up
# after each run); --persistent gives the other variants the same clients, like for like. For
# the Starling ones the broker's $SYS/broker/persistence/{commits,records,bytes} counters, read
# before and after each run (bench/sysread.py), give fsyncs per second and messages per fsync.
# Results: bench/results/<stamp>.jsonl (a meta line, then one starling-bench JSON line per run),
# <stamp>-summary.json, <stamp>.png, and the tables on stdout (bench/aggregate.py).
#
# Every run is bounded (starling-bench's own deadline, then `timeout`), every broker and sampler
# is stopped by its PID, and a run takes about 4 s (the count and time are printed up front;
# --repeats 1, fewer --scenarios or --no-rates for less).
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/compare.sh [options]
  --brokers LIST     starling,flashmq,mosquitto (default all three); 'flashmq' means the
                     variants flashmq-1t, flashmq and flashmq-nagle, 'mosquitto' means mosquitto
                     and mosquitto-nagle; single variants may be named too (flashmq-1t, ...),
                     and starling-bN: Starling with a batching budget (max_batch_delay_us N),
                     starling-iN: Starling with max_inflight_messages N, starling-acl and
                     mosquitto-acl: with a password file and an ACL of 1,000 users and patterns
                     (bench/gen-acl.py; the bench logs in as "bench"); starling-persist,
                     starling-persist-never, mosquitto-persist: with persistence on (sync
                     always / never; Mosquitto's snapshots), their clients --persistent;
                     starling-epoll: Starling on its epoll back-end (event_backend epoll);
                     starling-alt: the starlingd of --alt-bin (before/after a change)
  --alt-bin DIR      where starling-alt's starlingd is
  --flashmq PATH     FlashMQ binary (env FLASHMQ; default: where bench/flashmq.sh builds it)
  --scenarios LIST   fanout50,fanout500,fanin50,pairs50,wildcard100k,conn10k (default all),
                     or full ids such as fanout50-q1-256; also share1, share2, share4: fanin50
                     into a shared group ($share/collectors/...) of 1, 2 or 4 collectors
  --qos LIST         QoS levels for message scenarios (0,1)
  --payloads LIST    payload sizes in bytes (16,256)
  --repeats N        runs per scenario and broker; medians are reported (3)
  --duration SEC     measurement window per run (2)
  --warmup SEC       publishing before the window (0.5)
  --no-saturation    skip the saturation pass (and so the latency pass, which needs it)
  --no-latency       skip the latency pass (half of Mosquitto's saturation rate)
  --rates LIST       deliveries/s targets of the fixed-rate pass (20000,200000,2000000)
  --no-rates         skip the fixed-rate pass
  --no-nagle         skip the Nagle variants (flashmq-nagle, mosquitto-nagle)
  --coalesce-us N    starling-bench --coalesce-us in QoS 0 saturation runs (100)
  --outstanding N    starling-bench --outstanding in the saturation pass (50000)
  --queue-max N      starling-bench --queue-max in the saturation pass (10000)
  --broker-cpu LIST  CPUs for the broker, a taskset list (0); Starling gets one worker per CPU
  --bench-cpu N      CPU for starling-bench (1)
  --bin DIR          where starlingd and starling-bench are (build)
  --out DIR          results directory (bench/results)
  --persistent       every variant's clients use persistent sessions (starling-bench
                     --persistent), as the *-persist variants' always do: like for like
  --inflight N       starling-bench --inflight in every run: each publisher's QoS 1/2 window
                     (default the bench's 20, Mosquitto's max_inflight_messages); with
                     persistence_sync always it bounds a publisher to N messages per fsync
  --persist-dir DIR  where the *-persist variants' directories are made (/var/tmp; must not
                     be tmpfs: the point is the disk)
  --dry-run          print the runs, run nothing
EOF
}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
BROKERS=starling,flashmq,mosquitto
FLASHMQ_BIN=${FLASHMQ:-}
ALT_BIN=""
SCENARIOS=fanout50,fanout500,fanin50,pairs50,wildcard100k,conn10k
QOS_LIST=0,1
PAYLOADS=16,256
REPEATS=3
DURATION=2
WARMUP=0.5
SATURATION=1
LATENCY=1
TARGETS=20000,200000,2000000
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
PERSISTENT=0
PERSIST_BASE=/var/tmp
INFLIGHT=""

while [ $# -gt 0 ]; do
	case "$1" in
	--brokers) BROKERS=$2; shift 2 ;;
	--flashmq) FLASHMQ_BIN=$2; shift 2 ;;
	--alt-bin) ALT_BIN=$2; shift 2 ;;
	--scenarios) SCENARIOS=$2; shift 2 ;;
	--qos) QOS_LIST=$2; shift 2 ;;
	--payloads) PAYLOADS=$2; shift 2 ;;
	--repeats) REPEATS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--no-saturation) SATURATION=0; LATENCY=0; shift ;;
	--no-latency) LATENCY=0; shift ;;
	--rates) TARGETS=$2; shift 2 ;;
	--no-rates) TARGETS=""; shift ;;
	--no-nagle) NAGLE=0; shift ;;
	--coalesce-us) COALESCE=$2; shift 2 ;;
	--outstanding) OUTSTANDING=$2; shift 2 ;;
	--queue-max) QUEUE_MAX=$2; shift 2 ;;
	--broker-cpu) BROKER_CPU=$2; shift 2 ;;
	--bench-cpu) BENCH_CPU=$2; shift 2 ;;
	--bin) BIN=$(cd "$2" && pwd); shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--persistent) PERSISTENT=1; shift ;;
	--persist-dir) PERSIST_BASE=$2; shift 2 ;;
	--inflight) INFLIGHT=$2; shift 2 ;;
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
	share1 | share2 | share4) echo "fanin -P 50 -S ${1#share} --share collectors" ;;
	pairs50) echo "pairs -c 50" ;;
	wildcard100k) echo "wildcard -P 10 -S 100 -n 100000 -t 100" ;;
	conn10k) echo "connections -c 10000" ;;
	*) return 1 ;;
	esac
}

# Deliveries per published message of a scenario id, for the fixed-rate pass; empty when it is
# unknown before the run (wildcard: then the median "fan" of its saturation runs).
scenario_fan() {
	case "${1%%-q*}" in
	fanout50) echo 50 ;;
	fanout500) echo 500 ;;
	fanin50 | pairs50 | share[124]) echo 1 ;;
	*) [ "$DRY" = 1 ] || $PY "$ROOT/bench/aggregate.py" fan "$RESULTS" "$1" ;;
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

is_nagle() {
	case "$1" in *-nagle) return 0 ;; *) return 1 ;; esac
}

IDS=$(expand_scenarios)
VARIANTS=""
add_variant() {
	case " $VARIANTS " in *" $1 "*) ;; *) VARIANTS="$VARIANTS $1" ;; esac
}
for b in ${BROKERS//,/ }; do
	case "$b" in
	starling | starling-[bi][0-9]* | starling-acl | mosquitto-acl | flashmq-1t | flashmq-nagle | \
		mosquitto-nagle | starling-persist | starling-persist-never | mosquitto-persist | \
		starling-epoll | starling-alt)
		add_variant "$b" ;;
	flashmq)
		add_variant flashmq-1t
		add_variant flashmq
		if [ "$NAGLE" = 1 ]; then add_variant flashmq-nagle; fi
		;;
	mosquitto)
		add_variant mosquitto
		if [ "$NAGLE" = 1 ]; then add_variant mosquitto-nagle; fi
		;;
	*) die "unknown broker $b (starling, flashmq, flashmq-1t, flashmq-nagle, mosquitto, mosquitto-nagle)" ;;
	esac
done

BENCH=$BIN/starling-bench
[ -x "$BENCH" ] || die "$BENCH not found: build it first (make B=${BIN#"$ROOT"/} all)"
case " $VARIANTS " in *" starling"*)
	[ -x "$BIN/starlingd" ] || die "$BIN/starlingd not found; use --brokers mosquitto to run without it" ;;
esac
case " $VARIANTS " in *" starling-alt "*)
	[ -x "$ALT_BIN/starlingd" ] || die "starling-alt needs --alt-bin DIR with a starlingd" ;;
esac
case " $VARIANTS " in *" mosquitto"*)
	[ -x /usr/sbin/mosquitto ] || die "/usr/sbin/mosquitto not found (apt-get install mosquitto)" ;;
esac
case " $VARIANTS " in *" flashmq"*)
	[ -n "$FLASHMQ_BIN" ] || FLASHMQ_BIN=$("$ROOT/bench/flashmq.sh" --path 2>/dev/null || true)
	if [ -z "$FLASHMQ_BIN" ] || [ ! -x "$FLASHMQ_BIN" ]; then
		echo "compare.sh: FlashMQ not found${FLASHMQ_BIN:+ at $FLASHMQ_BIN}: bench/flashmq.sh builds it (or give --flashmq PATH); skipping it" >&2
		VARIANTS=$(for v in $VARIANTS; do case "$v" in flashmq*) ;; *) printf ' %s' "$v" ;; esac; done)
	fi
	;;
esac
[ -n "${VARIANTS// /}" ] || die "no broker selected"
case " $VARIANTS " in *"-persist"*)
	[ -d "$PERSIST_BASE" ] || die "--persist-dir $PERSIST_BASE: not a directory"
	if [ "$(stat -f -c %T "$PERSIST_BASE")" = tmpfs ]; then
		echo "compare.sh: warning: $PERSIST_BASE is tmpfs: the persistence figures will not include the disk" >&2
	fi
	;;
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
SEG_PID=""
PERSIST_DIR=""

# The TCP segment sampler of a fixed-rate run (bench/tcp_segs.py), stopped by its PID.
stop_sampler() {
	[ -n "$SEG_PID" ] || return 0
	kill "$SEG_PID" 2>/dev/null || true
	wait "$SEG_PID" 2>/dev/null || true
	SEG_PID=""
}

# The persistence directory of the broker just stopped: each start gets a fresh one.
remove_persist_dir() {
	[ -n "$PERSIST_DIR" ] || return 0
	rm -rf "$PERSIST_DIR"
	PERSIST_DIR=""
}

cleanup() {
	stop_sampler
	stop_broker
	remove_persist_dir
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# FlashMQ's own syntax (man 5 flashmq.conf): one listen block on 127.0.0.1, anonymous clients.
# FlashMQ has no outgoing window apart from its QoS quota: a 3.1.1 subscriber may have up to
# max_qos_msg_pending_per_client (at most 65535) QoS 1/2 messages unacknowledged, which stands
# for Mosquitto's max_inflight_messages + max_queued_messages (20 + 100000). Queued bytes count
# only for sessions that outlive their connection (not starling-bench's clean sessions) but get
# room too. QoS 0 messages are dropped past client_max_write_buffer_size (1 MiB by default): 8
# MiB here, twice Starling's max_output_bytes. No storage_dir: nothing persisted, as for the
# others.
write_flashmq_config() {
	local variant=$1 port=$2 conf=$3 nodelay=true
	[ "$variant" = flashmq-nagle ] && nodelay=false
	{
		# One thread, or FlashMQ's default: one per online CPU (get_nprocs()).
		if [ "$variant" = flashmq-1t ]; then echo "thread_count 1"; fi
		cat <<CONF
allow_anonymous true
log_file $WORK/$variant.log
rlimit_nofile $(ulimit -n)
max_qos_msg_pending_per_client 65535
max_qos_bytes_pending_per_client 134217728
client_max_write_buffer_size 8388608
listen {
  protocol mqtt
  inet_protocol ip4
  inet4_bind_address 127.0.0.1
  port $port
  tcp_nodelay $nodelay
}
CONF
	} >"$conf"
}

# Writes the config of a broker variant (Mosquitto syntax, which starlingd reads too).
write_config() {
	local variant=$1 port=$2 conf=$3 nodelay=true
	case "$variant" in flashmq*)
		write_flashmq_config "$@"
		return
		;;
	esac
	[ "$variant" = mosquitto-nagle ] && nodelay=false
	# max_queued_messages well above what starling-bench keeps in flight: Mosquitto 2.0.11
	# dropped QoS 1 messages with its default (1000) in fan-in even with 100 in flight.
	cat >"$conf" <<CONF
listener $port 127.0.0.1
max_connections -1
set_tcp_nodelay $nodelay
max_queued_messages 100000
CONF
	# *-acl: logins and access rules, made once per run by ensure_acl.
	case "$variant" in
	*-acl) printf 'allow_anonymous false\npassword_file %s\nacl_file %s\n' "$WORK/acl/passwd" \
		"$WORK/acl/acl" >>"$conf" ;;
	*) echo "allow_anonymous true" >>"$conf" ;;
	esac
	# Each with its own default window: Mosquitto 20, Starling 65535 (README).
	case "$variant" in mosquitto*) echo "max_inflight_messages 20" >>"$conf" ;; esac
	# *-persist: a fresh directory (made by start_broker). Starling publishes $SYS every
	# second so that the counters read around a run are at most a second old.
	case "$variant" in
	starling-persist*)
		printf 'persistence true\npersistence_location %s\nsys_interval 1\n' "$PERSIST_DIR" >>"$conf"
		if [ "$variant" = starling-persist-never ]; then
			echo "persistence_sync never" >>"$conf"
		else
			echo "persistence_sync always" >>"$conf"
		fi
		;;
	mosquitto-persist) printf 'persistence true\npersistence_location %s/\n' "$PERSIST_DIR" >>"$conf" ;;
	esac
	# Starling runs one worker per CPU it is given (one, by default); Mosquitto has one thread.
	# starling-bN: with a batching budget of N us (max_batch_delay_us); starling-iN: with
	# max_inflight_messages N (0: as many as the protocol allows).
	case "$variant" in starling*)
		echo "worker_threads $(cpu_count "$BROKER_CPU")" >>"$conf"
		case "$variant" in
		starling-b*) echo "max_batch_delay_us ${variant#starling-b}" >>"$conf" ;;
		starling-i*) echo "max_inflight_messages ${variant#starling-i}" >>"$conf" ;;
		starling-epoll) echo "event_backend epoll" >>"$conf" ;;
		esac
		;;
	esac
	return 0
}

# The password file and ACL of the *-acl variants: 1,000 users, their blocks and patterns.
ensure_acl() {
	[ -f "$WORK/acl/acl" ] && return 0
	"$PY" "$ROOT/bench/gen-acl.py" --users 1000 --dir "$WORK/acl" --passwd "$BIN/starling-passwd" \
		2>/dev/null || return 1
	# Mosquitto started as root reads them as the user mosquitto.
	chmod o+x "$WORK" && chmod 755 "$WORK/acl"
}

start_broker() {
	local variant=$1 conf=$WORK/$1.conf log=$WORK/$1.out
	BROKER_PORT=$(free_port)
	case "$variant" in *-acl) ensure_acl || return 1 ;; esac
	case "$variant" in *-persist*)
		PERSIST_DIR=$(mktemp -d "$PERSIST_BASE/starling-persist.XXXXXX") || return 1
		# Mosquitto started as root drops to the user mosquitto, which must write there.
		if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
			chown mosquitto: "$PERSIST_DIR"
		fi
		;;
	esac
	write_config "$variant" "$BROKER_PORT" "$conf"
	case "$variant" in
	starling-alt) taskset -c "$BROKER_CPU" "$ALT_BIN/starlingd" -c "$conf" >"$log" 2>&1 &
		;;
	starling*) taskset -c "$BROKER_CPU" "$BIN/starlingd" -c "$conf" >"$log" 2>&1 &
		;;
	flashmq*) taskset -c "$BROKER_CPU" "$FLASHMQ_BIN" -c "$conf" >"$log" 2>&1 &
		;;
	*) taskset -c "$BROKER_CPU" /usr/sbin/mosquitto -c "$conf" >"$log" 2>&1 &
		;;
	esac
	BROKER_PID=$!
	if ! wait_port "$BROKER_PORT"; then
		echo "compare.sh: $variant did not start; its output:" >&2
		cat "$log" >&2
		[ -f "$WORK/$variant.log" ] && tail -n 20 "$WORK/$variant.log" >&2
		stop_broker
		remove_persist_dir
		return 1
	fi
}

# The Starling persistence counters ($SYS/broker/persistence/...) as a JSON object, {} when the
# broker publishes none. $SYS is published every second (write_config): wait for a fresh round.
read_persist_counters() {
	sleep 1.2
	$PY "$ROOT/bench/sysread.py" "$BROKER_PORT" 2>/dev/null || echo '{}'
}

# Whether a variant's clients use persistent sessions.
persistent_clients() {
	case "$1" in *-persist*) return 0 ;; esac
	[ "$PERSISTENT" = 1 ]
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

# One run; appends its JSON line (or a failure line) to $RESULTS. A fixed-rate run (a target in
# $6) also samples the broker's TCP segments (bench/tcp_segs.py) on the bench's CPU.
run_one() {
	local phase=$1 rep=$2 id=$3 variant=$4 extra=$5 target=${6:-} label line rc=0
	label="phase=$phase;scenario=$id;broker=$variant;rep=$rep${target:+;target=$target}"
	if persistent_clients "$variant" && [ "$id" != conn10k ]; then
		extra="$extra --persistent"
	fi
	if [ -n "$INFLIGHT" ] && [ "$id" != conn10k ]; then
		extra="$extra --inflight $INFLIGHT"
	fi
	if [ "$DRY" = 1 ]; then
		echo "  $variant: starling-bench $(bench_args "$id") $extra"
		return
	fi
	if ! start_broker "$variant"; then
		echo "{\"ok\":false,\"error\":\"broker did not start\",\"label\":\"$label\"}" >>"$RESULTS"
		return
	fi
	rm -f "$WORK/segs.json"
	local sys0="" sys1=""
	case "$variant" in starling-persist*) sys0=$(read_persist_counters) ;; esac
	if [ -n "$target" ]; then
		taskset -c "$BENCH_CPU" "$PY" "$ROOT/bench/tcp_segs.py" --port "$BROKER_PORT" \
			--pid "$BROKER_PID" --out "$WORK/segs.json" --max-s 150 &
		SEG_PID=$!
	fi
	# starling-bench bounds itself (setup 60 s + window + drain); timeout is the backstop.
	# The argument lists are split into words on purpose.
	# shellcheck disable=SC2046,SC2086
	case "$variant" in *-acl) extra="$extra --username bench --password bench" ;; esac
	line=$(taskset -c "$BENCH_CPU" timeout -k 5 120 "$BENCH" $(bench_args "$id") $extra \
		-p "$BROKER_PORT" --broker-pid "$BROKER_PID" --json --label "$label" 2>"$WORK/bench.err") || rc=$?
	stop_sampler
	if [ -n "$line" ] && [ -s "$WORK/segs.json" ]; then
		line=$($PY "$ROOT/bench/aggregate.py" attach "$WORK/segs.json" <<<"$line")
	fi
	if [ -n "$sys0" ] && [ -n "$line" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
		sys1=$(read_persist_counters)
		line=$($PY "$ROOT/bench/aggregate.py" persist "$sys0" "$sys1" <<<"$line")
	fi
	if ! kill -0 "$BROKER_PID" 2>/dev/null; then
		line="{\"ok\":false,\"error\":\"the broker died during the run\",\"label\":\"$label\"}"
	elif [ -z "$line" ]; then
		line="{\"ok\":false,\"error\":\"starling-bench exited $rc without output\",\"label\":\"$label\"}"
	fi
	stop_broker
	remove_persist_dir
	echo "$line" | tail -n 1 >>"$RESULTS"
	printf '  %-16s %-26s %s\n' "$variant" "$id${target:+ @$target/s}" \
		"$($PY "$ROOT/bench/aggregate.py" oneline <<<"$line")"
}

# Word splitting of the lists is intended below.
# shellcheck disable=SC2086
count_runs() {
	local n_ids n_var n_msg n_fast sat=0 lat=0 fixed
	n_ids=$(echo $IDS | wc -w)
	n_var=$(echo $VARIANTS | wc -w)
	n_msg=$(echo $IDS | tr ' ' '\n' | grep -vc '^conn10k$' || true)
	n_fast=$(echo $VARIANTS | tr ' ' '\n' | grep -vc nagle || true)
	[ "$SATURATION" = 1 ] && sat=$((n_ids * n_var))
	[ "$LATENCY" = 1 ] && lat=$((n_msg * n_fast))
	fixed=$((n_msg * n_fast * $(echo ${TARGETS//,/ } | wc -w)))
	echo $(((sat + lat + fixed) * REPEATS))
}

# What was measured with what: the first line of the results file.
write_meta() {
	local fmq="" mosq="" info
	case " $VARIANTS " in *" flashmq"*)
		info=$(dirname "$(dirname "$FLASHMQ_BIN")")/BUILD-INFO
		if [ -f "$info" ]; then
			fmq="$(sed -n 's/^describe: //p' "$info") (commit $(sed -n 's/^commit: //p' "$info" | cut -c1-12)), $(sed -n 's/^flags: //p' "$info")"
		else
			fmq=$(timeout 5 "$FLASHMQ_BIN" --version 2>&1 | head -n 1 || true)
		fi
		;;
	esac
	case " $VARIANTS " in *" mosquitto"*)
		mosq=$(dpkg-query -W -f='${Version}' mosquitto 2>/dev/null || true) ;;
	esac
	$PY - "$RESULTS" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
		"$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
		"$(sha256sum "$BIN/starlingd" 2>/dev/null | cut -c1-16)" "$FLASHMQ_BIN" "$fmq" "$mosq" \
		"$VARIANTS" "$BROKER_CPU" "$BENCH_CPU" "$DURATION" "$WARMUP" \
		"$(cut -d' ' -f1-3 /proc/loadavg)" <<'PYEOF'
import json, sys
keys = ("date", "repo_head", "starlingd_sha256", "flashmq_bin", "flashmq", "mosquitto",
        "variants", "broker_cpu", "bench_cpu", "duration_s", "warmup_s", "load")
meta = dict(zip(keys, sys.argv[2:]))
meta["variants"] = meta["variants"].split()
with open(sys.argv[1], "a", encoding="utf-8") as f:
    f.write(json.dumps({"meta": meta}) + "\n")
PYEOF
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
if [ "$DRY" = 0 ]; then
	echo "compare.sh: results in $RESULTS"
	write_meta
fi

if [ "$SATURATION" = 1 ]; then
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
fi

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
				is_nagle "$variant" && continue
				run_one lat "$rep" "$id" "$variant" "-r $rate"
			done
		done <<<"$RATES"
	done
fi

if [ -n "$TARGETS" ]; then
	echo "== fixed-rate pass (deliveries/s targets ${TARGETS//,/, }; publish rate = target / fan-out)"
	for rep in $(seq 1 "$REPEATS"); do
		for id in $IDS; do
			[ "$id" = conn10k ] && continue
			fan=$(scenario_fan "$id")
			if [ -z "$fan" ] && [ "$DRY" = 0 ]; then
				[ "$rep" = 1 ] && echo "compare.sh: fan-out of $id unknown without its saturation runs; skipped" >&2
				continue
			fi
			for target in ${TARGETS//,/ }; do
				rate=RATE
				[ -n "$fan" ] && rate=$($PY -c "print(max(1, round($target / $fan)))")
				for variant in $VARIANTS; do
					is_nagle "$variant" && continue
					run_one rate "$rep" "$id" "$variant" "-r $rate" "$target"
				done
			done
		done
	done
fi

[ "$DRY" = 1 ] && exit 0
$PY "$ROOT/bench/aggregate.py" report "$RESULTS" --chart "$OUT/$STAMP.png" \
	--summary "$OUT/$STAMP-summary.json" --machine "$(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
