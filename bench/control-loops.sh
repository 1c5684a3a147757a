#!/usr/bin/env bash
# npm run bench:loops (also a phase of npm run bench): the reconciler's pass over 1,000 and
# 10,000 site rows, Berth's CPU per pass (bench/control-loops.ts), then the monitor probing
# 10,000 sites, probes a second per core (bench/probes.ts). Sets up like npm test (build,
# services); needs PostgreSQL and Redis. With BENCH_BUILT=1 (bench/run.sh) the build and
# the compiled bench are taken as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${BENCH_BUILT:-}" = 1 ] || bash scripts/prepare.sh --build
eval "$(bash scripts/services.sh postgres redis)"
if [ "${BENCH_BUILT:-}" != 1 ]; then
  rm -rf bench/.out
  node node_modules/typescript/bin/tsc -p bench/tsconfig.json
fi
day=$(date -u +%Y-%m-%d)
node bench/.out/control-loops.js | tee "bench/results/control-loops-$day.txt"
node bench/.out/probes.js | tee "bench/results/probes-$day.txt"
