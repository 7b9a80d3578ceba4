#!/usr/bin/env bash
# Builds docker/Dockerfile as IMAGE (default fer-pipeline:latest) from the repository root.
#   BASE=fer-base:bookworm docker/build.sh       # the base docker/make-base.sh made (no registry)
#   FER_WHEELS=DIR docker/build.sh                # offline from a wheel cache, made once by
#       pip download -c constraints.txt -d DIR '.[docker]' 'setuptools>=68' wheel
#   FER_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt docker/build.sh   # a TLS-inspecting proxy
# The CA bundle and the wheel cache reach the build as BuildKit secrets, never a layer.
set -euo pipefail
cd "$(dirname "$0")/.."
image="${1:-fer-pipeline:latest}"
args=(--network host -f docker/Dockerfile -t "$image")
[ -n "${BASE:-}" ] && args+=(--build-arg "BASE=$BASE")
[ -n "${FER_CA_BUNDLE:-}" ] && args+=(--secret "id=ca,src=$FER_CA_BUNDLE")

tmp="$(mktemp -d)"
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
if [ -n "${FER_WHEELS:-}" ]; then
  # The cache served on the loopback (the build shares the host's network): pip installs
  # from it alone, so the build needs no package index.
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  python3 -m http.server --bind 127.0.0.1 --directory "$FER_WHEELS" "$port" >"$tmp/http.log" 2>&1 &
  server=$!
  printf '[global]\nno-index = true\nfind-links = http://127.0.0.1:%s/\n' "$port" >"$tmp/pip.conf"
  args+=(--secret "id=pipconf,src=$tmp/pip.conf")
  for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" \
      2>/dev/null && break
    sleep 0.2
  done
fi
# BuildKit of the daemon itself (docker.io 20.10) or buildx; DOCKER names another client.
DOCKER_BUILDKIT=1 "${DOCKER:-docker}" build "${args[@]}" .
