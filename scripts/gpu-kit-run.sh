#!/usr/bin/env bash
# run.sh of the GPU kit (`npm run gpu-kit -- --out DIR`): unpacks node.xz and kit.tar.xz beside it, finds a Vulkan
# loader and driver, and runs the GPU check (dist/bench/gpu-check.js) with the kit's own Node.
#
#   bash DIR/run.sh [--quick] [--out FILE.json] [--layers N] [--skip-tests]
#
# Needs only bash, tar and xz or python3 (its lzma module). The results JSON goes to --out (default
# DIR/gpu-check.json) and, as one line, to the end of stdout. Unpacks into $ASER_KIT_WORK (default
# DIR/work), once per kit.
set -euo pipefail
kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${ASER_KIT_WORK:-$kit/work}"
say() { printf 'run.sh: %s\n' "$*" >&2; }

stamp="$work/.unpacked-$(cut -c1-16 "$kit/kit.sha256")"
if [ ! -f "$stamp" ]; then
  say "unpacking kit.tar.xz into $work"
  rm -rf "$work" && mkdir -p "$work"
  mkdir -p "$work/bin"
  if command -v xz >/dev/null 2>&1; then
    xz -dc "$kit/kit.tar.xz" | tar -x -C "$work"
    xz -dc "$kit/node.xz" > "$work/bin/node"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' "$kit/kit.tar.xz" "$work"
    python3 -c 'import sys, lzma, shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$kit/node.xz" "$work/bin/node"
  else
    say "error: neither xz nor python3 is here to unpack the kit"; exit 2
  fi
  chmod +x "$work/bin/node"
  touch "$stamp"
fi

export PATH="$work/bin:$PATH"
libs="$work/lib"
# The machine's own Vulkan loader when it has one (it matches its driver); else Debian's from the kit.
if ! { ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; }; then
  libs="$libs:$work/lib/vulkan"
  say "no system Vulkan loader: using the kit's ($(ls "$work/lib/vulkan"))"
fi
# NVIDIA's driver libraries may sit outside the linker's path (containers mount them here).
for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do [ -d "$d" ] && libs="$libs:$d"; done
export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# Vulkan drivers (ICDs): NVIDIA's may be under /usr/local/nvidia rather than the standard folders, so
# when the caller named none, list every one found (NVIDIA first) for the loader.
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  icds=""
  for f in /usr/local/nvidia/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json; do
    [ -f "$f" ] && icds="${icds:+$icds:}$f"
  done
  if [ -n "$icds" ]; then
    export VK_DRIVER_FILES="$icds" VK_ICD_FILENAMES="$icds"
    say "Vulkan drivers: $icds"
  else
    say "warning: no Vulkan driver manifest (ICD .json) found; Dawn will find no adapter"
  fi
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# There is no git checkout here: results name the commit the kit was built from.
ASER_COMMIT="$(sed -n 's/^ *"commit": "\([^"]*\)".*/\1/p' "$work/kit-info.json")"
export ASER_COMMIT
export ASER_KIT_DIR="$kit"

say "node $(node --version), $(uname -srm)"
# Paths the caller gave are relative to where run.sh was called from, not to the app folder.
args=(--out "$kit/gpu-check.json")
while [ $# -gt 0 ]; do
  if [ "$1" = "--out" ] && [ $# -gt 1 ]; then
    case "$2" in /*) args+=(--out "$2") ;; *) args+=(--out "$PWD/$2") ;; esac; shift 2
  else
    args+=("$1"); shift
  fi
done
cd "$work/app"
exec node dist/bench/gpu-check.js "${args[@]}"
