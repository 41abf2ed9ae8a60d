#!/usr/bin/env bash
# Build a local stand-in for the official `python:3.11-slim` image, for machines
# that cannot reach a container registry (see README "Offline base image").
#
# It is used ONLY when the real image is missing and cannot be pulled:
#   1. if `python:3.11-slim` already exists locally, do nothing;
#   2. else try `docker pull python:3.11-slim` (a learner's laptop gets the real one);
#   3. else build a Debian bookworm rootfs with mmdebstrap and `docker import` it,
#      tagged python:3.11-slim and python:3.11-slim-bookworm, and SAY SO.
#
# Differences from the official image: Debian's Python 3.11.2 instead of a
# source build, packages land in dist-packages, no Python.h.
set -euo pipefail

TAG="python:3.11-slim"
LABEL_KEY="io.mlops-labs.offline-base"
PULL_TIMEOUT="${PULL_TIMEOUT:-20}"

log() { printf '[base-image] %s\n' "$*" >&2; }

if ! docker info >/dev/null 2>&1; then
  log "failed to reach the Docker daemon: start it (sudo systemctl start docker) and re-run"
  exit 2
fi

if docker image inspect "$TAG" >/dev/null 2>&1; then
  if [ -n "$(docker image inspect -f "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$TAG" 2>/dev/null)" ]; then
    log "$TAG present (offline stand-in built by this script earlier)"
  else
    log "$TAG present (official image)"
  fi
  exit 0
fi

if [ "${SKIP_PULL:-0}" != "1" ] && timeout "$PULL_TIMEOUT" docker pull -q "$TAG" >/dev/null 2>&1; then
  log "pulled the official $TAG"
  exit 0
fi

log "NOTICE: cannot pull $TAG (no container registry reachable)."
log "NOTICE: building a LOCAL STAND-IN from Debian bookworm packages with mmdebstrap."
log "NOTICE: it has Debian's Python 3.11; learner Dockerfiles build unchanged."

if ! command -v mmdebstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
  else
    log "failed to find mmdebstrap: run 'sudo apt-get install mmdebstrap' and re-run"
    exit 2
  fi
fi
if [ "$(id -u)" != 0 ]; then
  log "failed to build the stand-in: mmdebstrap --mode=root needs root (run with sudo)"
  exit 2
fi

work=$(mktemp -d)
cleanup() { umount "$work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
mount -t tmpfs -o size=2g tmpfs "$work" 2>/dev/null || true
root="$work/rootfs"

start=$(date +%s)
mmdebstrap --variant=minbase --mode=root --format=directory \
  --include=python3,python3-pip,python3-venv,python-is-python3,ca-certificates,netbase,tzdata \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt=force-unsafe-io \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  bookworm "$root" >/dev/null 2>"$work/mmdebstrap.log" || { cat "$work/mmdebstrap.log" >&2; exit 1; }

# Behave like the official image.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/python3.11/site-packages"
for b in python python3 pip pip3; do
  src=/usr/bin/$b; [ -e "$root$src" ] || src=/usr/bin/${b%3}3
  ln -sf "$src" "$root/usr/local/bin/$b"
done
echo /usr/local/lib/python3.11/site-packages > "$root/usr/lib/python3/dist-packages/usr-local-site-packages.pth"
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
fi
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*

tar -C "$root" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PIP_BREAK_SYSTEM_PACKAGES=1' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change "LABEL $LABEL_KEY=mmdebstrap-bookworm" \
  --change 'CMD ["python3"]' \
  - "$TAG" >/dev/null
docker tag "$TAG" python:3.11-slim-bookworm
size=$(docker image inspect -f '{{.Size}}' "$TAG")
log "built offline stand-in $TAG in $(( $(date +%s) - start ))s, $(( size / 1000000 )) MB"
