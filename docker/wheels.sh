#!/usr/bin/env bash
# A wheel cache for offline image builds (FER_WHEELS=DIR docker/build.sh): every wheel of
# constraints.txt the image installs, with the build tools, downloaded once.
#   docker/wheels.sh DIR
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:?usage: docker/wheels.sh DIR}"
pip="${PIP:-.venv/bin/pip}"
"$pip" download -c constraints.txt -d "$dir" '.[docker]' 'setuptools>=68' wheel async-timeout
# The project itself comes from the build context, never from the cache.
rm -f "$dir"/fer_pipeline-* "$dir"/fer-pipeline-*
