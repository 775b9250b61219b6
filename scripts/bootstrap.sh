#!/usr/bin/env bash
# Make sure uv (the project's package manager) is available; it comes from PyPI.
set -euo pipefail
if command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1; then
  exit 0
fi
echo "Installing uv from PyPI..."
python3 -m pip install --quiet uv 2>/dev/null \
  || python3 -m pip install --quiet --break-system-packages uv \
  || python3 -m pip install --quiet --user uv
python3 -m uv --version >/dev/null
