#!/bin/sh
# Installs the Debian packages Starling needs when any is missing (make deps).
# Fast when everything is present: one dpkg-query, no network.
set -eu

pkgs="build-essential pkg-config liburing-dev libjemalloc-dev libxxhash-dev libcunit1-dev
libbenchmark-dev libssl-dev libisal-dev libsystemd-dev openssl mosquitto-clients python3-paho-mqtt mosquitto gnuplot-nox procps iproute2
systemd strace man-db nats-server libnats-dev
clang-format nodejs node-mqtt chromium esbuild node-buffer node-process node-url prometheus"

missing=""
for p in $pkgs; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing"
if [ "$(id -u)" -eq 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1; then
	SUDO="sudo"
else
	echo "deps: missing$missing; run as root: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have empty package lists: update only when the first try fails.
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y -q --no-install-recommends $missing; then
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends $missing
fi
