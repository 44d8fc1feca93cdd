#!/usr/bin/env bash
# Builds the Docker images the tests need, each only when missing (needs a running engine:
# scripts/docker-engine.sh start, and the workspace's dependencies: pnpm install):
#   1. running-agent/debian-base:bookworm  offline Debian base via debootstrap (30-90 s)
#   2. running-agent/sandbox:opencode-<v>  the default sandbox image, FROM that base, through the
#      Engine API with OpenCode's binary from npm (about 5-20 s); never pulls from a registry
set -euo pipefail
cd "$(dirname "$0")/.."

base_image="${RUNNING_AGENT_DOCKER_BASE_IMAGE:-running-agent/debian-base:bookworm}"
DOCKER_BASE_IMAGE="$base_image" bash scripts/docker-base-image.sh
pnpm --filter @running-agent/sandbox-docker run build-image --offline --quiet --base-image "$base_image"
