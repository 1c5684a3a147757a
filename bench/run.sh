#!/usr/bin/env bash
# npm run bench: sets up like npm test (build, services, stub images), then runs
# bench/bench.ts against Berth started from dist/main.js in its own database (berth_bench),
# Redis database 14, BERTH_INSTANCE=bench, subnets 10.90.0.0/16 (script: 10.91.N.0/24) and
# ports 30000-31999 (script: 32000+). Prints a table; writes bench/results/<time>.json and
# bench/results/latest.json. Options (environment): see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[bench] $*" >&2; }

bash scripts/prepare.sh --build
# The bench measures sites on their host ports, as before the edge; the edge's own figures
# are still to be written (see README, The edge).
export BERTH_EDGE=none
eval "$(bash scripts/services.sh)"
bash scripts/images.sh stub mariadb >&2

log "compiling the benchmark (bench/.out)"
rm -rf bench/.out
node node_modules/typescript/bin/tsc -p bench/tsconfig.json

# Whatever happens (failure, Ctrl-C), stop the Berth we started and remove every Docker
# object of the bench instance and of the script baseline.
cleanup() {
  local status=$?
  if [ -f bench/.out/berth.pid ]; then
    pid=$(cat bench/.out/berth.pid)
    if kill -0 "$pid" 2>/dev/null && grep -q 'dist/main.js' "/proc/$pid/cmdline" 2>/dev/null; then
      log "stopping Berth (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      kill -CONT "$pid" 2>/dev/null || true # the density phase pauses it for a while
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  ids=$(docker ps -aq --filter label=berth.instance=bench)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
  vols=$(docker volume ls -q --filter label=berth.instance=bench)
  [ -z "$vols" ] || docker volume rm -f $vols >/dev/null 2>&1 || true
  nets=$(docker network ls -q --filter label=berth.instance=bench)
  [ -z "$nets" ] || docker network rm $nets >/dev/null 2>&1 || true
  bash bench/script-baseline.sh --cleanup || true
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$(date +%s)
node bench/.out/bench.js
# Backups at size (issue 3/6), on the real images: also `npm run bench:backups` alone.
if [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *,backups,* ]]; then
  bash scripts/images.sh mariadb wordpress >&2
  node bench/.out/backups.js | tee "bench/results/backups-$(date -u +%Y-%m-%d).txt"
fi
# The reconciler's pass at 1,000 and 10,000 site rows: also `npm run bench:loops` alone.
if [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *,loops,* ]]; then
  BENCH_BUILT=1 bash bench/control-loops.sh
fi
# One site like for like with the real images, installed and through the edge (issue 6/6):
# also `npm run bench:site` alone.
if [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *,site,* ]]; then
  BENCH_BUILT=1 bash bench/installed-site.sh
fi
# A new tenant's database server's first start, alone and beside WordPress: also
# `npm run bench:db` alone.
if [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *,db,* ]]; then
  BENCH_BUILT=1 bash bench/db-start.sh
fi
log "npm run bench took $(($(date +%s) - start)) s (after set-up)"
