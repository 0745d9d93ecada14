#!/bin/sh
# Builds the Debian package from a staged `make install` (make deb):
#   tools/dist/mkdeb.sh STAGE VERSION OUTDIR
# STAGE/root holds the installed tree (PREFIX=/usr). Writes OUTDIR/starling_VERSION_ARCH.deb
# and prints its path. Depends: the packages of the shared libraries the binaries link
# (dpkg-shlibdeps, which reads each library's symbols file for the lowest version that
# provides every symbol used), and adduser for the postinst.
set -eu

stage=$1
version=$2
out=$3
here=$(cd "$(dirname "$0")" && pwd)
root=$stage/root
arch=$(dpkg --print-architecture)
deb=$out/starling_${version}_${arch}.deb

# /var/lib/starling is made by the postinst, owned by the starling user it creates.
rm -rf "$root/var"
# Debian's layout: man pages gzipped, binaries without their debugging symbols.
find "$root/usr/share/man" -type f ! -name '*.gz' -exec gzip -9nf {} +
bins="$root/usr/sbin/starlingd $(find "$root/usr/bin" -type f | sort | tr '\n' ' ')"
# shellcheck disable=SC2086
strip --remove-section=.comment --remove-section=.note --strip-unneeded $bins

# dpkg-shlibdeps wants a source package's debian/control beside it.
mkdir -p "$stage/src/debian"
printf 'Source: starling\n\nPackage: starling\nArchitecture: any\n' >"$stage/src/debian/control"
exe=""
for b in $bins; do
	exe="$exe -e$b"
done
# shellcheck disable=SC2086
shlibs=$(cd "$stage/src" && dpkg-shlibdeps -O $exe 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
if [ -z "$shlibs" ]; then
	echo "mkdeb: dpkg-shlibdeps found no dependencies" >&2
	exit 1
fi

maint=$(git -C "$here" log -1 --format='%an <%ae>' 2>/dev/null || true)
[ -n "$maint" ] || maint="Starling <root@localhost>"
mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<CONTROL
Package: starling
Version: $version
Architecture: $arch
Maintainer: $maint
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $shlibs, adduser
Section: net
Priority: optional
Description: MQTT broker on io_uring, a drop-in replacement for Mosquitto
 Starling is an MQTT 3.1, 3.1.1 and 5.0 broker for Linux built for high
 fan-out telemetry. It reads Mosquitto's configuration, password and ACL
 files, and delivers many more messages per second per core: one io_uring
 loop per worker, one send per connection per loop iteration.
 .
 This package holds the broker (starlingd, run as the starlingd service),
 the command-line clients starling-pub and starling-sub, the password-file
 tool starling-passwd and the load generator starling-bench.
CONTROL
echo /etc/starling/starling.conf >"$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "$here/deb/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
	xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
