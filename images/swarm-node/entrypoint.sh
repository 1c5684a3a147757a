#!/bin/sh
# Starts the node's Docker Engine. Without --privileged, /sys and the cgroup hierarchies come
# read-only: remount them read-write (the container has the capabilities to), and forget the
# pid files of a previous run (a restarted node container keeps its filesystem).
set -eu
mount -o remount,rw /sys 2>/dev/null || true
# A plain remount of a cgroup hierarchy answers "busy"; remounting the bind works.
for d in /sys/fs/cgroup/*; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then mount -o remount,bind,rw "$d" || echo "swarm-node: $d stays read-only" >&2; fi
done
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid /run/docker.pid
# tcp://0.0.0.0:2375 without TLS: test clusters only, on a bridge network of the test host.
exec dockerd -H unix:///var/run/docker.sock -H tcp://0.0.0.0:2375 "$@"
