#!/usr/bin/env bash
# A wheel cache for offline image builds (FER_WHEELS=DIR docker/build.sh): every wheel of
# constraints.txt the image installs, with the build tools, downloaded once.
#   docker/wheels.sh DIR
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:?usage: docker/wheels.sh DIR}"
pip="${PIP:-.venv/bin/pip}"
# pip resolves every requirement again even when each wheel is there (2-3 minutes): a cache
# filled for these versions is reused as is.
stamp="$dir/.filled-for"
sum="$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
  echo "$dir holds the wheels of these constraints.txt and pyproject.toml"
  exit 0
fi
"$pip" download -c constraints.txt -d "$dir" '.[docker]' 'setuptools>=68' wheel async-timeout
# The project itself comes from the build context, never from the cache.
rm -f "$dir"/fer_pipeline-* "$dir"/fer-pipeline-*
echo "$sum" >"$stamp"
