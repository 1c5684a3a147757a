#!/usr/bin/env bash
# npm run up: installs and starts what is missing, then runs Berth (API and worker).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[berth] $*" >&2; }

# The operator's environment wins; .berth/env (local state, never committed) fills in the
# rest, and keys found in neither are generated into it (the admin key is printed then only).
# shellcheck source=scripts/berth-env.sh
. scripts/berth-env.sh

bash scripts/prepare.sh --build
eval "$(bash scripts/services.sh)"

# Use the configured images when present or pullable; otherwise build local equivalents.
export BERTH_WORDPRESS_IMAGE="${BERTH_WORDPRESS_IMAGE:-wordpress:6-apache}"
export BERTH_DB_IMAGE="${BERTH_DB_IMAGE:-mariadb:10.11}"
have_image() { docker image inspect "$1" >/dev/null 2>&1 || timeout 60 docker pull -q "$1" >/dev/null 2>&1; }
if ! have_image "$BERTH_WORDPRESS_IMAGE" || ! have_image "$BERTH_DB_IMAGE"; then
  log "$BERTH_WORDPRESS_IMAGE or $BERTH_DB_IMAGE cannot be pulled: building local images from Debian packages"
  bash scripts/images.sh wordpress mariadb >&2
  have_image "$BERTH_WORDPRESS_IMAGE" || export BERTH_WORDPRESS_IMAGE=berth/wordpress:6.1
  have_image "$BERTH_DB_IMAGE" || export BERTH_DB_IMAGE=berth/mariadb:10.11
  log "using $BERTH_WORDPRESS_IMAGE and $BERTH_DB_IMAGE"
fi

berth_announce_admin_key
exec node dist/main.js
