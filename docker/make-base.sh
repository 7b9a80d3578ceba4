#!/usr/bin/env bash
# Makes the images' base, Debian bookworm, without an image registry: debootstrap from
# Debian's package mirror, then `docker import`. Where a registry is reachable, build with
# the default BASE (debian:bookworm-slim) instead and skip this.
#   docker/make-base.sh [NAME]          # default fer-base:bookworm; needs root and debootstrap
set -euo pipefail
name="${1:-fer-base:bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$name" >/dev/null 2>&1; then
  echo "$name exists"
  exit 0
fi
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root" "$mirror"
# As the slim image: no apt lists or caches in the layer.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$name"
echo "made $name"
