#!/usr/bin/env bash
# Keeps the layers of src/ pointing down (src/README.md): every #include "..." of a file in
# src/LAYER/ must name a header of LAYER itself (bare, same folder) or of a layer LAYER may use,
# as "layer/name.h". The codec's public headers (include/starling/) are the codec layer. The
# tools use the codec (starling-passwd the auth layer's password files, starling-store-gen the
# store layer's persistence log); tests and
# benchmarks may reach any layer.
#
#   tools/check-layers.sh [ROOT]     check the tree at ROOT (default: the repository)
#   tools/check-layers.sh --self-test   show that a wrong include fails and a right one passes
set -u

# What each layer may include besides itself. A new folder under src/ must be added here.
declare -A USES=(
	[codec]=""
	[base]="codec"
	[io]="codec base"
	[index]="codec base"
	[auth]="codec base"
	[store]="codec base"
	[http]="codec base"
	[bridge]="codec base"
	[cluster]="codec base"
	[broker]="codec base io index auth store http bridge cluster"
	[top]="codec base io index auth store http bridge cluster broker"
	# starling-passwd includes auth/passwd.h so that it writes exactly what the broker reads;
	# starling-store-gen includes store/ (record encoder, shard function) for the same reason;
	# starling-bench frames its WebSocket traffic with io/ws.h, the broker's own framing.
	[tools]="codec auth store io"
)

# check_file ROOT FILE LAYER: prints one line per include FILE (in LAYER) may not have.
check_file()
{
	local root=$1 file=$2 layer=$3 dir inc target allowed bad=0
	dir=$(dirname "$file")
	while IFS= read -r inc; do
		case "$inc" in
		starling/*) target=codec ;;
		*/*) target=${inc%%/*} ;;
		*)
			# A bare name is a header of the same folder, never one found through -I.
			if [ ! -e "$root/$dir/$inc" ]; then
				echo "$file: #include \"$inc\" is not in $dir/; name its layer (\"layer/$inc\")"
				bad=1
			fi
			continue
			;;
		esac
		if [ "$target" != codec ] && [ ! -e "$root/src/$inc" ]; then
			echo "$file: #include \"$inc\": no such header src/$inc"
			bad=1
			continue
		fi
		[ "$target" = "$layer" ] && continue
		allowed=" ${USES[$layer]} "
		case "$allowed" in
		*" $target "*) ;;
		*)
			echo "$file: layer '$layer' includes \"$inc\" of layer '$target'; '$layer' may use: ${USES[$layer]:-nothing}"
			bad=1
			;;
		esac
	done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$root/$file")
	return $bad
}

check_tree()
{
	local root=$1 status=0 f layer
	for d in "$root"/src/*/; do
		layer=$(basename "$d")
		if [ -z "${USES[$layer]+set}" ]; then
			echo "src/$layer/: a layer that tools/check-layers.sh does not know; add it to USES"
			status=1
		fi
	done
	while IFS= read -r f; do
		case "$f" in
		src/*/*) layer=${f#src/}; layer=${layer%%/*} ;;
		src/*) layer=top ;;
		include/starling/*) layer=codec ;;
		tools/*) layer=tools ;;
		esac
		[ -n "${USES[$layer]+set}" ] || continue
		check_file "$root" "$f" "$layer" || status=1
	done < <(cd "$root" && find src include/starling tools -name '*.[ch]' 2>/dev/null | sort)
	return $status
}

self_test()
{
	local tmp rc
	tmp=$(mktemp -d) || exit 1
	mkdir -p "$tmp/src/codec" "$tmp/src/base" "$tmp/src/index" "$tmp/include/starling" "$tmp/tools"
	echo '#include "starling/codec.h"' >"$tmp/src/base/hmap.h"
	echo '#include "hmap.h"' >"$tmp/src/base/hmap.c"
	echo '#include "base/hmap.h"' >"$tmp/src/index/subidx.c"
	: >"$tmp/include/starling/codec.h"
	echo '#include "starling/codec.h"' >"$tmp/tools/cli.c"
	check_tree "$tmp" >/dev/null || { echo "self-test: a clean tree failed"; rm -rf "$tmp"; return 1; }
	rc=0
	for bad in 'src/codec/x.c:#include "base/hmap.h"' 'src/base/y.c:#include "index/subidx.h"' \
		'src/index/z.c:#include "broker/worker.h"' 'src/base/w.c:#include "subidx.h"' \
		'tools/t.c:#include "base/hmap.h"' 'src/index/v.c:#include "nowhere/x.h"'; do
		echo "${bad#*:}" >"$tmp/${bad%%:*}"
		if check_tree "$tmp" >/dev/null; then
			echo "self-test: ${bad%%:*} with ${bad#*:} passed the check"
			rc=1
		fi
		rm -f "$tmp/${bad%%:*}"
	done
	mkdir -p "$tmp/src/newlayer"
	check_tree "$tmp" >/dev/null && { echo "self-test: an unknown layer passed"; rc=1; }
	rm -rf "$tmp"
	[ $rc -eq 0 ] && echo "layer-check self-test: passed"
	return $rc
}

case "${1:-}" in
--self-test) self_test; exit ;;
"") root=$(cd "$(dirname "$0")/.." && pwd) ;;
*) root=$1 ;;
esac
if check_tree "$root"; then
	echo "layer-check: passed"
else
	echo "layer-check: FAILED (src/README.md says which layer may use which)"
	exit 1
fi
