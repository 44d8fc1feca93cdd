#!/usr/bin/env bash
# The README's test command: sets up a fresh machine, starts the services the tests need
# (a Docker Engine without the default bridge, the offline images), builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
started_engine=0
if [[ -f scripts/docker-engine.sh ]]; then
  if bash scripts/docker-engine.sh status >/dev/null 2>&1; then :; else
    bash scripts/docker-engine.sh start
    started_engine=1
  fi
  stop_engine() { if ((started_engine)); then bash scripts/docker-engine.sh stop || true; fi; }
  trap stop_engine EXIT
  [[ -f scripts/docker-images.sh ]] && bash scripts/docker-images.sh
fi

pnpm -r --filter './packages/*' run build
# Each published package as a user would install it: exports, types and files checked.
pnpm -r --filter './packages/*' exec publint --strict
pnpm -r run typecheck
pnpm -r --workspace-concurrency=1 run test
