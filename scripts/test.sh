#!/usr/bin/env bash
# The README's test command: sets up a fresh machine, starts the services the tests need
# (a Docker Engine without the default bridge, the offline images), builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

reports=$(mktemp -d)
started_engine=0
lane=
cleanup() {
  # A lane left running (the other one failed under set -e) goes with everything it started.
  if [[ -n "$lane" ]]; then kill -- "-$lane" 2>/dev/null || true; fi
  rm -rf "$reports"
  if ((started_engine)); then bash scripts/docker-engine.sh stop || true; fi
}
trap cleanup EXIT
if ! bash scripts/docker-engine.sh status >/dev/null 2>&1; then
  bash scripts/docker-engine.sh start
  started_engine=1
fi

pnpm -r --filter './packages/*' run build

# Two lanes from here, balanced at about 15 minutes each on a quiet machine; every package's tests run
# even when another's fail, and the summary's exit code decides.
#  - The first needs no Docker: the static checks, then core's tests (one file at a time, its vitest
#    config: the longest package), jobs', the dashboard's, and the fresh-app install. Its output is
#    printed whole when it ends, so that the two lanes do not interleave.
#  - The second builds the Docker images (debootstrap on a fresh machine) while the first checks, then
#    runs the other packages one after another, each with its files in parallel.
lane_log="$reports/lane.log"
lane_status="$reports/lane.status"
setsid bash -c '
  set -uo pipefail
  reports=$1
  status=0
  # Each published package as a user would install it: exports, types and files checked.
  pnpm -r --filter "./packages/*" exec publint --strict || status=1
  # What pnpm publish writes: no source condition, every exported path in the tarball, and attw
  # (ESM-only profile) on that tarball.
  node scripts/check-packs.mjs || status=1
  pnpm -r run typecheck || status=1
  # The API docs of every package: every exported member documented, no broken link (warnings fail).
  pnpm run docs || status=1
  ((status)) && echo "the static checks failed (see their lines above)"
  for package in @running-agent/core @running-agent/jobs @running-agent/example-dashboard; do
    RUNNING_AGENT_TEST_REPORTS="$reports" pnpm --filter "$package" run test || true
  done
  # A newcomer'"'"'s install: publish to a local registry, a fresh npm and pnpm app install, import,
  # type-check (skipLibCheck off) and run the README snippet. Its failure fails the run at the end.
  node scripts/fresh-app-test.mjs || { echo "scripts/fresh-app-test.mjs failed (see its lines above)"; status=1; }
  echo "$status" >"$reports/lane.status"
' lane "$reports" >"$lane_log" 2>&1 &
lane=$!
bash scripts/docker-images.sh
RUNNING_AGENT_TEST_REPORTS="$reports" pnpm -r --workspace-concurrency=1 --no-bail --filter '!@running-agent/core' --filter '!@running-agent/jobs' --filter '!@running-agent/example-dashboard' run test || true
wait "$lane" || true
lane=
echo "---- the static checks, @running-agent/core, @running-agent/jobs, the dashboard, then the fresh-app install ----"
cat "$lane_log"
lane_failed=$(cat "$lane_status" 2>/dev/null || echo 1)
summary=0
node scripts/test-summary.mjs "$reports" $(ls -d packages/*/ examples/*/ | xargs -n1 basename) || summary=$?
if ((lane_failed)); then echo "the static checks or scripts/fresh-app-test.mjs failed (see their lines above)"; fi
exit $((summary || lane_failed))
