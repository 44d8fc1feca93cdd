#!/usr/bin/env bash
# Starts or stops a Docker Engine for tests and CI: default bridge off, no iptables rules,
# the default socket (so dockerode's defaults and DOCKER_HOST-less clients work).
# Idempotent: `start` does nothing when an engine already answers on the socket.
#
#   scripts/docker-engine.sh start    # starts dockerd in the background, waits until it answers
#   scripts/docker-engine.sh stop     # stops the engine this script started (by its pidfile)
#   scripts/docker-engine.sh status   # exit 0 when an engine answers
#
# Environment: DOCKER_ENGINE_STATE (folder for pidfile and log, default /var/run/running-agent-dockerd),
# DOCKER_ENGINE_DATA_ROOT (default /var/lib/docker).
set -euo pipefail

socket=/var/run/docker.sock
state_dir="${DOCKER_ENGINE_STATE:-/var/run/running-agent-dockerd}"
data_root="${DOCKER_ENGINE_DATA_ROOT:-/var/lib/docker}"
pidfile="$state_dir/dockerd.pid"
logfile="$state_dir/dockerd.log"

engine_answers() {
  docker -H "unix://$socket" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start_engine() {
  if engine_answers; then
    echo "docker-engine: an engine already answers on $socket"
    return 0
  fi
  if ! command -v dockerd >/dev/null; then
    echo "docker-engine: dockerd not found; install it with: apt-get install -y docker.io" >&2
    exit 1
  fi
  mkdir -p "$state_dir"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "docker-engine: dockerd (pid $(cat "$pidfile")) is running but not answering yet; waiting"
  else
    # setsid: the engine outlives this script's process group (CI steps, test runners).
    setsid dockerd \
      --bridge=none --iptables=false --ip6tables=false \
      -H "unix://$socket" \
      --pidfile "$pidfile" \
      --data-root "$data_root" \
      --exec-root "$state_dir/exec" \
      >"$logfile" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    if engine_answers; then
      echo "docker-engine: engine answers on $socket (pid $(cat "$pidfile" 2>/dev/null || echo '?'), log $logfile)"
      return 0
    fi
    sleep 0.5
  done
  echo "docker-engine: the engine did not answer within 60 s; last log lines:" >&2
  tail -n 30 "$logfile" >&2 || true
  exit 1
}

stop_engine() {
  if [[ ! -f "$pidfile" ]]; then
    echo "docker-engine: no pidfile at $pidfile; nothing started by this script"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "docker-engine: dockerd $pid did not stop in 30 s; sending KILL" >&2
      kill -KILL "$pid" || true
    fi
  fi
  rm -f "$pidfile"
  echo "docker-engine: stopped"
}

case "${1:-}" in
  start) start_engine ;;
  stop) stop_engine ;;
  status) engine_answers ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
