#!/usr/bin/env bash
# Make sure a Docker daemon answers. On Debian/Ubuntu as root it installs
# docker.io (and hey) with apt and starts dockerd when nothing else does;
# everywhere else it says exactly what to do. Exit 0 when `docker info` works.
set -euo pipefail
log() { printf '[docker] %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
  exit 0
fi

is_debian() { [ -r /etc/os-release ] && grep -qiE '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release; }

if [ "$(id -u)" = 0 ] && is_debian; then
  if ! command -v dockerd >/dev/null 2>&1; then
    log "installing docker.io and hey with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io hey >/dev/null
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    # No init system here (a container or CI sandbox): run dockerd in the background.
    if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
      rm -f /var/run/docker.pid   # stale pid file from a daemon killed earlier
    fi
    log "starting dockerd in the background (log: /var/log/dockerd.log)"
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && { log "Docker daemon is up"; exit 0; }
    sleep 1
  done
  log "failed to start dockerd: see /var/log/dockerd.log"
  exit 2
fi

cat >&2 <<'MSG'
[docker] No Docker daemon is reachable. Install and start Docker, then re-run:
  - macOS / Windows: Docker Desktop  https://docs.docker.com/desktop/
  - Debian / Ubuntu: sudo apt-get install docker.io && sudo systemctl start docker
                     (then: sudo usermod -aG docker $USER, and log in again)
  - other Linux:     https://docs.docker.com/engine/install/
MSG
exit 2
