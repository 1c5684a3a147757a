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
# The engine answers on TCP over TLS only, to clients with a certificate of the cluster's CA
# (scripts/swarm.sh makes them and mounts this node's at /etc/docker/tls).
tls=/etc/docker/tls
for f in ca.pem server-cert.pem server-key.pem; do
  [ -s "$tls/$f" ] || { echo "swarm-node: $tls/$f is missing (scripts/swarm.sh mounts it)" >&2; exit 1; }
done
exec dockerd -H unix:///var/run/docker.sock -H tcp://0.0.0.0:2376 \
  --tlsverify --tlscacert "$tls/ca.pem" --tlscert "$tls/server-cert.pem" --tlskey "$tls/server-key.pem" "$@"
