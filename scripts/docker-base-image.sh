#!/usr/bin/env bash
# Builds the offline Debian base image `running-agent/debian-base:bookworm` with debootstrap
# with git, CA certificates and socat (no Docker Hub needed) and imports it into the running Docker Engine. Skips when the image
# exists. The Debian mirror is read from this machine's apt sources.
#
#   scripts/docker-base-image.sh            # build when missing
#   DOCKER_BASE_IMAGE=name:tag scripts/docker-base-image.sh
set -euo pipefail

image="${DOCKER_BASE_IMAGE:-running-agent/debian-base:bookworm}"
suite=bookworm

# An image from before socat was in the list (the egress relay needs it) is built again.
if docker image inspect "$image" >/dev/null 2>&1 && docker run --rm --network none --entrypoint /bin/sh "$image" -c 'command -v socat' >/dev/null 2>&1; then
  echo "docker-base-image: $image exists; skipping"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  echo "docker-base-image: debootstrap not found; install it with: apt-get install -y debootstrap" >&2
  exit 1
fi

# The first mirror in the apt sources that serves the plain suite (not -security or -updates).
debian_mirror() {
  local file
  # deb822 (.sources): a stanza with `URIs:` and a `Suites:` line listing the suite.
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" ]] || continue
    awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uri != "" && found && binary) { print uri; exit } uri = ""; found = 0; binary = 0; next }
      /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") binary = 1 }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = 1 }
      END { if (uri != "" && found && binary) print uri }
    ' "$file" | head -n 1
  done
  # One-line format (.list): `deb [options] URI suite components`.
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$file" ]] || continue
    awk -v suite="$suite" '
      $1 == "deb" {
        n = 2
        if ($2 ~ /^\[/) { while (n <= NF && $n !~ /\]$/) n++; n++ }
        if ($(n + 1) == suite) print $n
      }
    ' "$file"
  done
}

mirror="$(debian_mirror | head -n 1)"
if [[ -z "$mirror" ]]; then
  echo "docker-base-image: no apt source for '$suite' found in /etc/apt/sources.list*; cannot pick a Debian mirror" >&2
  exit 1
fi

root="$(mktemp -d /tmp/running-agent-debian-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT

echo "docker-base-image: debootstrap $suite from $mirror into $root"
debootstrap --variant=minbase --include=git,ca-certificates,socat "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
  echo "docker-base-image: debootstrap failed; last log lines:" >&2
  tail -n 30 "$root.log" >&2
  rm -f "$root.log"
  exit 1
}
rm -f "$root.log"
# Apt caches and lists make the image bigger and are useless inside it.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  - "$image"
echo "docker-base-image: imported $image"
