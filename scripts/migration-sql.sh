#!/usr/bin/env bash
# Prints the SQL that takes a database from FROM_SCHEMA (default: empty) to prisma/schema.prisma.
# Prisma 7's migration engine cannot be downloaded on these machines; Prisma 6's CLI with its
# WebAssembly engine can still diff two datamodels offline (it only needs some reachable
# PostgreSQL for its adapter, which it does not write to). Use it to write a new migration:
#   npm run db:diff -- <old schema.prisma> > prisma/migrations/<timestamp>_<name>/migration.sql
set -euo pipefail
cd "$(dirname "$0")/.."
from="${1:-}"
: "${DATABASE_URL:?set DATABASE_URL (any reachable PostgreSQL)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Prisma 6 wants the url in the datasource block, Prisma 7 refuses it there.
inject() { sed 's#^\(\s*provider\s*=\s*"postgresql"\)#\1\n  url = "postgresql://unused"#' "$1"; }
inject prisma/schema.prisma > "$work/to.prisma"
cat > "$work/prisma.config.ts" <<CONF
import { defineConfig } from '$PWD/node_modules/prisma6/config';
import { PrismaPg } from '$PWD/node_modules/prisma6-adapter-pg';
export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: 'to.prisma',
  async adapter() { return new PrismaPg({ connectionString: process.env.DATABASE_URL }); },
} as never);
CONF
if [ -n "$from" ]; then
  inject "$from" > "$work/from.prisma"
  args=(--from-schema-datamodel from.prisma)
else
  args=(--from-empty)
fi
cd "$work"
PRISMA_HIDE_UPDATE_MESSAGE=1 PRISMA_QUERY_ENGINE_LIBRARY=/bin/true PRISMA_SCHEMA_ENGINE_BINARY=/bin/true \
  node "$OLDPWD/node_modules/prisma6/build/index.js" migrate diff "${args[@]}" --to-schema-datamodel to.prisma --script
