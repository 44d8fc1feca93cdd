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
# What pnpm publish writes: no source condition, every exported path in the tarball, and attw
# (ESM-only profile) on that tarball.
node scripts/check-packs.mjs
pnpm -r run typecheck
# The API docs of every package: every exported member documented, no broken link (warnings fail).
pnpm run docs
# Every package runs even when one fails; the summary's exit code decides. Core's tests run one
# file at a time (its vitest config) and take the longest, so they run in a lane of their own beside
# the other packages, which run one package at a time (each with its files in parallel); jobs'
# tests and the fresh-app install follow core in its lane, which balances the two (about 9 and 9
# minutes on a quiet machine). That lane's output is printed whole when it ends, so the two lanes
# do not interleave.
core_log="$reports/core.log"
fresh_app_status="$reports/fresh-app.status"
(
  RUNNING_AGENT_TEST_REPORTS="$reports" pnpm --filter @running-agent/core run test || true
  RUNNING_AGENT_TEST_REPORTS="$reports" pnpm --filter @running-agent/jobs run test || true
  # A newcomer's install: publish to a local registry, a fresh npm and pnpm app install, import,
  # type-check (skipLibCheck off) and run the README snippet. Its failure fails the run at the end.
  status=0
  node scripts/fresh-app-test.mjs || status=$?
  echo "$status" >"$fresh_app_status"
) >"$core_log" 2>&1 &
core_lane=$!
RUNNING_AGENT_TEST_REPORTS="$reports" pnpm -r --workspace-concurrency=1 --no-bail --filter '!@running-agent/core' --filter '!@running-agent/jobs' run test || true
wait "$core_lane" || true
echo "---- @running-agent/core, @running-agent/jobs, then the fresh-app install ----"
cat "$core_log"
fresh_app=$(cat "$fresh_app_status" 2>/dev/null || echo 1)
summary=0
node scripts/test-summary.mjs "$reports" $(ls -d packages/*/ examples/*/ | xargs -n1 basename) || summary=$?
if ((fresh_app)); then echo "scripts/fresh-app-test.mjs failed (see its lines above)"; fi
exit $((summary || fresh_app))
