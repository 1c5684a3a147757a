#!/usr/bin/env bash
# npm run bench:site (also the last phase of npm run bench): one site like for like with the
# real images, installed and served through the edge, Berth against bench/script-baseline.sh
# (bench/installed-site.ts). Sets up like npm test: build, services, the real images, and two
# Caddys: Berth's edge (admin 127.0.0.1:2398) and the script's own (admin 127.0.0.1:2397).
# With BENCH_BUILT=1 (bench/run.sh) the build and the compiled bench are taken as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${BENCH_BUILT:-}" = 1 ] || bash scripts/prepare.sh --build
unset BERTH_EDGE
BERTH_EDGE_ADMIN_URL=http://127.0.0.1:2397 bash scripts/services.sh edge >/dev/null
export BERTH_EDGE_ADMIN_URL=http://127.0.0.1:2398
eval "$(bash scripts/services.sh)"
bash scripts/images.sh mariadb wordpress >&2
if [ "${BENCH_BUILT:-}" != 1 ]; then
  rm -rf bench/.out
  node node_modules/typescript/bin/tsc -p bench/tsconfig.json
fi
trap 'bash bench/script-baseline.sh --cleanup || true' EXIT
node bench/.out/installed-site.js | tee "bench/results/installed-site-$(date -u +%Y-%m-%d).txt"
