#!/usr/bin/env bash
# Builds the Docker images the tests need, each only when missing (needs a running engine:
# scripts/docker-engine.sh start, and the workspace's dependencies: pnpm install):
#   1. running-agent/debian-base:bookworm  offline Debian base via debootstrap (30-90 s)
#   2. running-agent/sandbox:opencode-<v>  the default sandbox image (git, socat, OpenCode), FROM that base, through the
#      Engine API with OpenCode's binary from npm (about 5-20 s); never pulls from a registry
set -euo pipefail
cd "$(dirname "$0")/.."

base_image="${RUNNING_AGENT_DOCKER_BASE_IMAGE:-running-agent/debian-base:bookworm}"
DOCKER_BASE_IMAGE="$base_image" bash scripts/docker-base-image.sh
# A sandbox image from before socat was added (the egress relay needs it) is built again.
sandbox_image="$(node -e 'import("./packages/sandbox-docker/dist/index.js").then((m) => console.log(m.DEFAULT_IMAGE))' 2>/dev/null || true)"
force=()
if [[ -n "$sandbox_image" ]] && docker image inspect "$sandbox_image" >/dev/null 2>&1 \
  && ! docker run --rm --network none --entrypoint /bin/sh "$sandbox_image" -c 'command -v socat' >/dev/null 2>&1; then
  force=(--force)
fi
pnpm --filter @running-agent/sandbox-docker run build-image --offline --quiet --base-image "$base_image" "${force[@]}"
