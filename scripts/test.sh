#!/usr/bin/env bash
# The README's test command: sets up a fresh machine, starts the services the tests need
# (a Docker Engine without the default bridge, the offline images), builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

reports=$(mktemp -d)
started_engine=0
cleanup() {
  rm -rf "$reports"
  if ((started_engine)); then bash scripts/docker-engine.sh stop || true; fi
}
trap cleanup EXIT
if ! bash scripts/docker-engine.sh status >/dev/null 2>&1; then
  bash scripts/docker-engine.sh start
  started_engine=1
fi
bash scripts/docker-images.sh

pnpm -r --filter './packages/*' run build
# Each published package as a user would install it: exports, types and files checked.
pnpm -r --filter './packages/*' exec publint --strict
# What pnpm publish writes: no source condition, every exported path in the tarball.
node scripts/check-packs.mjs
pnpm -r run typecheck
# Every package runs even when one fails; the summary's exit code decides. Core's tests run one
# file at a time (its vitest config) and take the longest, so they run in a lane of their own beside
# the other packages, which run one package at a time (each with its files in parallel). Core's
# output is printed whole when its lane ends, so the two lanes do not interleave.
core_log="$reports/core.log"
RUNNING_AGENT_TEST_REPORTS="$reports" pnpm --filter @running-agent/core run test >"$core_log" 2>&1 &
core_lane=$!
RUNNING_AGENT_TEST_REPORTS="$reports" pnpm -r --workspace-concurrency=1 --no-bail --filter '!@running-agent/core' run test || true
wait "$core_lane" || true
echo "---- @running-agent/core ----"
cat "$core_log"
node scripts/test-summary.mjs "$reports" $(ls -d packages/*/ examples/*/ | xargs -n1 basename)
