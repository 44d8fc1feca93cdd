#!/usr/bin/env bash
# Installs everything the demo and the tests need on a fresh Debian machine (run as root):
# system packages, pnpm at the version pinned in package.json, and the workspace's dependencies.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

want_packages=(git bubblewrap socat)
if [[ "${RUNNING_AGENT_SETUP:-full}" == "full" ]]; then
  want_packages+=(docker.io debootstrap chromium curl util-linux postgresql)
fi
missing=()
for package in "${want_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

pnpm_version=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [[ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]]; then
  echo "setup: installing pnpm $pnpm_version"
  npm install -g --silent "pnpm@$pnpm_version" >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent
