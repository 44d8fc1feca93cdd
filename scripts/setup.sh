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
# The system packages install beside pnpm and the workspace's dependencies (two archives, two downloads).
apt_pid=
apt_log=$(mktemp)
# A failed step below still lets dpkg finish (a killed install would leave it half-configured).
trap '[[ -z "$apt_pid" ]] || wait "$apt_pid" 2>/dev/null; rm -f "$apt_log"' EXIT
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } >"$apt_log" 2>&1 &
  apt_pid=$!
fi

pnpm_version=$(node -p "require('./package.json').packageManager.split('@')[1]")
if [[ "$(pnpm --version 2>/dev/null || true)" != "$pnpm_version" ]]; then
  echo "setup: installing pnpm $pnpm_version"
  npm install -g --silent "pnpm@$pnpm_version" >/dev/null
fi

pnpm install --frozen-lockfile --reporter=silent
if [[ -n "$apt_pid" ]] && ! wait "$apt_pid"; then
  cat "$apt_log" >&2
  echo "setup: installing ${missing[*]} failed" >&2
  exit 1
fi
