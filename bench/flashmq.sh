#!/usr/bin/env bash
# Builds FlashMQ (github:halfgaar/FlashMQ, the multi-threaded C++ broker that compare.sh measures
# Starling against) from a source snapshot into a cache directory outside the repository, and
# prints the path of the binary. FlashMQ's code never enters this repository: the snapshot is
# read with `git archive` (or copied from a plain source directory) into the cache.
#
#   bench/flashmq.sh                    build (once) and print .../bin/flashmq
#   bench/flashmq.sh --path             print where the binary would be; build nothing
#   bench/flashmq.sh --src DIR --rev v1.26.2 --cache DIR
#
# A build is keyed by the snapshot's commit: $CACHE/<commit>/bin/flashmq, with BUILD-INFO beside
# it (commit, version, compiler, flags). When that binary exists a rerun prints it at once. The
# build is FlashMQ's own release build (CMAKE_BUILD_TYPE=Release, as its build.sh does: -O3
# -DNDEBUG, plus the -msse4.2 its CMakeLists adds), made in a temporary directory and moved into
# place only once `flashmq --version` has answered. Debian's cmake, g++, make and libssl-dev are
# installed with apt-get when missing (as root or through sudo; apt-get update only when the
# first install fails), as tools/deps.sh does for the project's own packages.
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/flashmq.sh [options]
  --src PATH     FlashMQ snapshot: a git repository (bare or not) or a plain source directory
                 (default: /work/.mirror/halfgaar+FlashMQ/repo when it exists)
  --rev REV      revision to build from a git snapshot (HEAD)
  --cache DIR    where builds go (${XDG_CACHE_HOME:-$HOME/.cache}/starling/flashmq)
  --jobs N       parallel compile jobs (nproc)
  --path         print the path the binary has (or would have) and build nothing
EOF
}

SRC=""
REV=HEAD
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/starling/flashmq
JOBS=$(nproc)
PATH_ONLY=0
DEFAULT_SRC=/work/.mirror/halfgaar+FlashMQ/repo
BUILD_TIMEOUT_S=1800

while [ $# -gt 0 ]; do
	case "$1" in
	--src) SRC=$2; shift 2 ;;
	--rev) REV=$2; shift 2 ;;
	--cache) CACHE=$2; shift 2 ;;
	--jobs) JOBS=$2; shift 2 ;;
	--path) PATH_ONLY=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "flashmq.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	esac
done

die() {
	echo "flashmq.sh: $*" >&2
	exit 1
}

if [ -z "$SRC" ]; then
	[ -e "$DEFAULT_SRC" ] || die "no snapshot at $DEFAULT_SRC; give one with --src (e.g. a clone of https://github.com/halfgaar/FlashMQ)"
	SRC=$DEFAULT_SRC
fi
[ -e "$SRC" ] || die "$SRC does not exist"

# The snapshot's identity: a git commit, or a hash of a plain directory's files.
if GIT_DIR_OF_SRC=$(git -C "$SRC" rev-parse --absolute-git-dir 2>/dev/null) ||
	GIT_DIR_OF_SRC=$(git --git-dir="$SRC" rev-parse --absolute-git-dir 2>/dev/null); then
	COMMIT=$(git --git-dir="$GIT_DIR_OF_SRC" rev-parse --verify "$REV^{commit}") ||
		die "$REV is not a commit of $SRC"
	KEY=$COMMIT
else
	[ -f "$SRC/CMakeLists.txt" ] || die "$SRC is neither a git repository nor a FlashMQ source directory"
	GIT_DIR_OF_SRC=""
	COMMIT=""
	KEY=dir-$(cd "$SRC" && find . -type f ! -path './.git/*' -print0 | LC_ALL=C sort -z |
		xargs -0 sha1sum | sha1sum | cut -c1-16)
fi

DEST=$CACHE/$KEY
BIN=$DEST/bin/flashmq
if [ "$PATH_ONLY" = 1 ] || [ -x "$BIN" ]; then
	echo "$BIN"
	exit 0
fi

# The packages the build needs, installed as tools/deps.sh does.
install_deps() {
	local p st missing="" sudo=""
	for p in cmake g++ make libssl-dev; do
		st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
	done
	[ -z "$missing" ] && return 0
	echo "flashmq.sh: installing$missing" >&2
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || die "missing$missing; run as root: apt-get install$missing"
		sudo=sudo
	fi
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	if ! $sudo apt-get install -y -q --no-install-recommends $missing >&2; then
		$sudo apt-get update -q >&2
		$sudo apt-get install -y -q --no-install-recommends $missing >&2
	fi
}

install_deps
mkdir -p "$CACHE"
TMP=$(mktemp -d "$CACHE/.build-$KEY.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
LOG=$TMP/build.log

echo "flashmq.sh: building FlashMQ ${COMMIT:-$KEY} from $SRC (log: $DEST/build.log)" >&2
mkdir -p "$TMP/src"
if [ -n "$GIT_DIR_OF_SRC" ]; then
	git --git-dir="$GIT_DIR_OF_SRC" archive --format=tar "$COMMIT" | tar -x -C "$TMP/src"
	DESCRIBE=$(git --git-dir="$GIT_DIR_OF_SRC" describe --tags --always "$COMMIT" 2>/dev/null || echo "$COMMIT")
else
	cp -a "$SRC/." "$TMP/src/"
	rm -rf "$TMP/src/.git"
	DESCRIBE=$KEY
fi

# The build directory sits inside the source tree, as build.sh's does: CMakeLists.txt runs
# ../.get-os-codename-and-stamp.sh relative to it (for cpack only, which is not run here).
if ! {
	timeout "$BUILD_TIMEOUT_S" cmake -S "$TMP/src" -B "$TMP/src/build" -DCMAKE_BUILD_TYPE=Release &&
		timeout "$BUILD_TIMEOUT_S" cmake --build "$TMP/src/build" --target flashmq -j "$JOBS"
} >"$LOG" 2>&1; then
	tail -n 30 "$LOG" >&2
	die "the build failed (whole log above the last 30 lines: $LOG, removed on exit)"
fi

VERSION=$(timeout 10 "$TMP/src/build/flashmq" --version 2>&1 | head -n 3) ||
	die "the built binary did not answer --version: $VERSION"
mkdir -p "$TMP/out/bin"
cp "$TMP/src/build/flashmq" "$TMP/out/bin/flashmq"
cp "$LOG" "$TMP/out/build.log"
{
	echo "source: $SRC"
	echo "commit: ${COMMIT:-none (plain directory $KEY)}"
	echo "describe: $DESCRIBE"
	echo "built: $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -r)"
	echo "compiler: $(g++ --version | head -n 1)"
	echo "cmake: $(cmake --version | head -n 1)"
	echo "build type: Release"
	echo "flags: $(sed -n 's/^CXX_FLAGS = //p' "$TMP/src/build/CMakeFiles/flashmq.dir/flags.make")"
	echo "version: $VERSION"
} >"$TMP/out/BUILD-INFO"
# Another build of the same commit may have finished meanwhile: keep the first one.
mv -T "$TMP/out" "$DEST" 2>/dev/null || [ -x "$BIN" ] || die "could not move the build to $DEST"
echo "flashmq.sh: $(grep '^version:' "$DEST/BUILD-INFO" | head -n 1)" >&2
echo "$BIN"
