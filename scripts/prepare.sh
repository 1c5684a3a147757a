#!/usr/bin/env bash
# Installs Node dependencies, generates the Prisma client and the API client's types, and
# compiles Berth (with --build).
# Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[berth] $*" >&2; }

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing Node dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
# Prisma's CLI wants its native schema engine even for generate, which never runs it;
# the engine cannot be downloaded here, so point it at any existing file.
if [ ! -f src/generated/prisma/client.ts ] || [ prisma/schema.prisma -nt src/generated/prisma/client.ts ]; then
  log "generating the Prisma client"
  PRISMA_SCHEMA_ENGINE_BINARY="${PRISMA_SCHEMA_ENGINE_BINARY:-/bin/true}" \
    node node_modules/prisma/build/index.js generate >&2
fi
# The typed client's types, from the committed REST contract (openapi.json).
if [ ! -f src/generated/openapi.ts ] || [ openapi.json -nt src/generated/openapi.ts ]; then
  log "generating the client's types from openapi.json"
  mkdir -p src/generated
  node node_modules/openapi-typescript/bin/cli.js openapi.json --output src/generated/openapi.ts --default-non-nullable false --silent >&2
fi
if [ "${1:-}" = "--build" ]; then
  log "compiling"
  node node_modules/typescript/bin/tsc -p tsconfig.build.json
fi
