#!/usr/bin/env bash
# Fresh-machine setup (Debian bookworm, Node >= 20, as root): system packages, npm dependencies, build.
# Safe to re-run; each step skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if [ "$(id -u)" = 0 ]; then
  bash scripts/install-system.sh
else
  echo "setup: not root, skipping apt packages (run scripts/install-system.sh as root if WebGPU or LAPACK is missing)"
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
