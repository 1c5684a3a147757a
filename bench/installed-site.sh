#!/usr/bin/env bash
# npm run bench:site: how long a new tenant's first installed site, and a second one, take to
# answer over HTTPS through the edge (bench/installed-site.ts). Sets up like npm test: build,
# services, the real images, and the bench's own edge (Caddy, admin 127.0.0.1:2398).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh --build
export BERTH_EDGE_ADMIN_URL=http://127.0.0.1:2398
unset BERTH_EDGE
eval "$(bash scripts/services.sh)"
bash scripts/images.sh mariadb wordpress >&2
rm -rf bench/.out
node node_modules/typescript/bin/tsc -p bench/tsconfig.json
node bench/.out/installed-site.js | tee "bench/results/installed-site-$(date -u +%Y-%m-%d).txt"
