#!/usr/bin/env bash
# Records Berth's contracts from the code, for review in the diff: openapi.json (REST) and
# schema.graphql (GraphQL). Starts PostgreSQL, Redis and Docker if needed (as npm test does),
# runs Berth (API role) on a free port, and writes both files.
#   npm run contract                      # refuses a GraphQL change that breaks clients
#   npm run contract -- --accept-breaking # records it anyway (a deliberate break: say so in the commit)
# npm test fails while either file differs from what the code serves (test/contract.e2e-spec.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[berth] $*" >&2; }

bash scripts/prepare.sh
# The client is typed from openapi.json, which this script is about to rewrite: a change to
# the contract can fail its type check until then, so this first compile goes on regardless
# (tsc still emits the server); the build at the end checks everything.
node node_modules/typescript/bin/tsc -p tsconfig.build.json >&2 || log "type errors above: continuing, the final build checks again"
eval "$(bash scripts/services.sh postgres redis docker)"
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
log "starting Berth (api role) on 127.0.0.1:$port"
BERTH_ROLE=api HOST=127.0.0.1 PORT="$port" BERTH_INSTANCE=contract BERTH_LOG_LEVEL=warn \
  BERTH_ADMIN_KEY="${BERTH_ADMIN_KEY:-berth_contract-key-0123456789abcdefghijklmnop}" node dist/main.js >&2 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
  kill -0 "$pid" 2>/dev/null || { log "Berth exited"; exit 1; }
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/docs-json" | node -e "process.stdout.write(JSON.stringify(JSON.parse(require('fs').readFileSync(0, 'utf8')), null, 2) + '\n')" >openapi.json.tmp
mv openapi.json.tmp openapi.json
log "openapi.json written"
node scripts/graphql-schema.mjs "http://127.0.0.1:$port" --write "$@"
# The client's types follow the new openapi.json.
rm -f src/generated/openapi.ts
bash scripts/prepare.sh --build
