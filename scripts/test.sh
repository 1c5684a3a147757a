#!/usr/bin/env bash
# npm test: sets up everything the tests need, then runs every test (unit and end-to-end)
# against real PostgreSQL, Redis and Docker Engine. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "[berth] $*" >&2; }

bash scripts/prepare.sh --build
log "type-checking sources and tests"
node node_modules/typescript/bin/tsc --noEmit -p tsconfig.json
# Each test slot has its own edge (Caddy), so the suites never load over another Berth's routes.
export BERTH_EDGE_ADMIN_URL="http://127.0.0.1:$((2119 + ${BERTH_TEST_SLOT:-0}))"
unset BERTH_EDGE
eval "$(bash scripts/services.sh all prometheus)"
# Small stand-ins keep the suite fast; the database server is the real MariaDB build, and
# test/wordpress.e2e-spec.ts runs the real WordPress build; test/compose.e2e-spec.ts deploys
# docker-compose.yml on local builds of node, postgres, redis and caddy.
bash scripts/images.sh stub mariadb wordpress compose >&2
# docker-compose.yml is validated by the suite with Debian's docker-compose.
if ! command -v docker-compose >/dev/null 2>&1; then
  log "installing docker-compose (to validate docker-compose.yml)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
# test/wordpress.e2e-spec.ts screenshots a real site with headless Chromium.
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium (headless screenshots of a real WordPress site)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium >/dev/null
fi

# The suite runs in its own database, created afresh, so it never touches Berth's own.
TEST_DATABASE_URL="$(node -e '
  const u = new URL(process.argv[1]); u.pathname = "/berth_test" + process.argv[2]; process.stdout.write(u.toString());
' "$DATABASE_URL" "${BERTH_TEST_SLOT:-0}")"
export BERTH_TEST_ADMIN_DATABASE_URL="$DATABASE_URL"
export DATABASE_URL="$TEST_DATABASE_URL"

out="test-output/slot${BERTH_TEST_SLOT:-0}"
mkdir -p "$out"
export BERTH_TEST_OUTPUT="$PWD/$out"
# npm test runs the unit and end-to-end projects; npm run test:faults selects its own.
if [[ " $* " != *" --selectProjects"* ]]; then
  set -- "$@" --selectProjects=unit --selectProjects=e2e
fi
set +e
node node_modules/jest/bin/jest.js --ci --runInBand --json --outputFile="$out/jest.json" "$@"
status=$?
set -e
node -e '
  const r = require(process.argv[1]);
  const skipped = r.numPendingTests + r.numTodoTests;
  const failedSuites = r.testResults.filter((s) => s.status === "failed" && s.assertionResults.every((a) => a.status !== "failed")).length;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests + failedSuites} failed` + (skipped ? `, ${skipped} skipped` : ""));
' "$PWD/$out/jest.json"
exit $status
