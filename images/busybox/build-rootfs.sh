#!/usr/bin/env bash
# Build the root filesystem of berth/busybox into $1 (an empty directory) from Debian's
# busybox-static package. Called by scripts/images.sh; the result is `docker import`ed.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
chmod 755 "$dl"
# apt-get download as root warns about the unsandboxed download unless _apt can write here
chown _apt "$dl" 2>/dev/null || true
if ! (cd "$dl" && apt-get download -q busybox-static >/dev/null 2>&1); then
  echo "[berth] busybox: apt-get download failed, running apt-get update" >&2
  apt-get update -qq >&2
  (cd "$dl" && apt-get download -q busybox-static >/dev/null)
fi
dpkg -x "$dl"/busybox-static_*.deb "$dl/x"

mkdir -p "$out"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/www,var/tmp,run,proc,sys,dev}
install -m 755 "$dl/x/bin/busybox" "$out/bin/busybox"
"$out/bin/busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$out/$(dirname "$applet")"
  ln -sf /bin/busybox "$out/$applet"
done
chmod 1777 "$out/tmp" "$out/var/tmp"
chmod 700 "$out/root"
install -m 644 "$here/passwd" "$out/etc/passwd"
install -m 644 "$here/group" "$out/etc/group"
printf 'hosts: files dns\n' >"$out/etc/nsswitch.conf"
