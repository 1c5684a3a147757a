#!/usr/bin/env bash
# Build a minimal Debian 12 (bookworm) root filesystem into $1 with debootstrap.
# Usage: build-rootfs.sh DIR MIRROR [SECURITY_MIRROR]
# Called by scripts/images.sh; the result is `docker import`ed as berth/debian:bookworm.
set -euo pipefail
out=$1
mirror=$2
security=${3:-}
suite=bookworm

debootstrap --variant=minbase "$suite" "$out" "$mirror" >"$out.debootstrap.log" 2>&1 || {
  tail -n 30 "$out.debootstrap.log" >&2
  exit 1
}
rm -f "$out.debootstrap.log"

# apt sources: the same mirror the host uses (containers reach it the same way)
{
  echo "deb $mirror $suite main"
  echo "deb $mirror $suite-updates main"
  [ -n "$security" ] && echo "deb $security $suite-security main"
} >"$out/etc/apt/sources.list"

# what Docker's own Debian images do: no daemons started by package scripts during
# builds, no recommends, no apt caches, no docs/man pages
cat >"$out/usr/sbin/policy-rc.d" <<'P'
#!/bin/sh
exit 101
P
chmod 755 "$out/usr/sbin/policy-rc.d"
cat >"$out/etc/apt/apt.conf.d/90berth" <<'P'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
P
cat >"$out/etc/dpkg/dpkg.cfg.d/90berth-nodoc" <<'P'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
P

# Docker provides these at run time
: >"$out/etc/resolv.conf"
: >"$out/etc/hostname"
rm -rf "$out"/var/lib/apt/lists/* "$out"/var/cache/apt/*.bin "$out"/var/cache/apt/archives/*.deb \
  "$out"/var/log/*.log "$out"/var/log/apt/* "$out"/tmp/* "$out"/var/tmp/*
