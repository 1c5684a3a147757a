#!/usr/bin/env bash
# npm run bench:swarm: Berth on the local three-node Swarm (scripts/swarm.sh, Docker-in-Docker
# nodes) against Berth on this machine's single engine, in one run (bench/swarm.ts): sites over
# tenants provisioned at once, then the time until a killed node's sites are DOWN, and UP again
# once it is back. Sets up like npm test (build, services, images); makes the cluster and its
# edge, and removes the cluster at the end (BENCH_SWARM_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${BENCH_BUILT:-}" = 1 ] || bash scripts/prepare.sh --build
eval "$(bash scripts/services.sh postgres redis docker)"
bash scripts/images.sh busybox stub-wordpress mariadb caddy swarm-node >&2
if [ "${BENCH_BUILT:-}" != 1 ]; then
  rm -rf bench/.out
  node node_modules/typescript/bin/tsc -p bench/tsconfig.json
fi
export BERTH_SWARM_IMAGES="berth/busybox:latest berth/mariadb:10.11 berth/stub-wordpress:latest berth/caddy:2"
eval "$(bash scripts/swarm.sh up 3)"
eval "$(bash scripts/swarm.sh edge)"
export BERTH_SWARM_MANAGER BERTH_SWARM_CERT_PATH BERTH_EDGE_ADDRESS
[ "${BENCH_SWARM_KEEP:-}" = 1 ] || trap 'bash scripts/swarm.sh down || true' EXIT
node bench/.out/swarm.js | tee "bench/results/swarm-$(date -u +%Y-%m-%d).txt"
