#!/usr/bin/env bash
# npm run bench:db (also a phase of npm run bench): a new tenant's database server's first
# start, alone and beside the WordPress container a site's job starts with it
# (bench/db-start.ts). Sets up like npm test (build, Docker, the real images). With
# BENCH_BUILT=1 (bench/run.sh) the build and the compiled bench are taken as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${BENCH_BUILT:-}" = 1 ] || bash scripts/prepare.sh --build
eval "$(bash scripts/services.sh docker)"
bash scripts/images.sh stub mariadb wordpress >&2
if [ "${BENCH_BUILT:-}" != 1 ]; then
  rm -rf bench/.out
  node node_modules/typescript/bin/tsc -p bench/tsconfig.json
fi
node bench/.out/db-start.js | tee "bench/results/db-start-$(date -u +%Y-%m-%d).txt"
