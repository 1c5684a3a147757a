#!/usr/bin/env bash
# npm run bench:backups: backup, second backup, restore, clone and download of a site with
# 5,000 posts and 200 MB of uploads, beside an empty one (bench/backups.ts). Sets up like npm
# test: build, services (restic included), the real images. No edge: sites answer on host ports.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare.sh --build
export BERTH_EDGE=none
eval "$(bash scripts/services.sh)"
bash scripts/images.sh mariadb wordpress >&2
rm -rf bench/.out
node node_modules/typescript/bin/tsc -p bench/tsconfig.json
node bench/.out/backups.js | tee "bench/results/backups-$(date -u +%Y-%m-%d).txt"
