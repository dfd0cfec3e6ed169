#!/usr/bin/env bash
# System packages, as root on Debian bookworm. Idempotent: each group is checked on its own and only
# what is missing gets installed (one apt-get update, only when something is).
#   1. Mesa's llvmpipe Vulkan driver from bookworm-backports (bookworm's own Mesa is too old for Dawn);
#      skipped when a lavapipe ICD is present (FORCE_MESA_INSTALL=1 reinstalls).
#   2. LAPACK for the quantizer's native addon (quant/native): liblapacke-dev + libopenblas-dev, and the
#      compiler toolchain node-gyp needs (g++, make, python3).
#   3. Debian's chromium, for the tests that render `aser eval report`'s HTML and run the web page
#      (WebGPU on SwiftShader) headlessly (playwright-core).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

updated=0
apt_update() {
  if [ "$updated" = 0 ]; then apt-get update -qq; updated=1; fi
}

# --- 1. Mesa llvmpipe (Vulkan) -----------------------------------------------------------------
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && [ "${FORCE_MESA_INSTALL:-0}" != 1 ]; then
  echo "mesa llvmpipe vulkan: present"
else
  list=/etc/apt/sources.list.d/bookworm-backports.sources
  if [ ! -f "$list" ]; then
    cat > "$list" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt_update
  apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  echo "mesa llvmpipe vulkan: installed $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
fi

# --- 2. LAPACK + toolchain for quant/native ----------------------------------------------------
missing=()
for pkg in liblapacke-dev libopenblas-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ "${#missing[@]}" = 0 ]; then
  echo "lapack (lapacke + openblas) and build tools: present"
else
  apt_update
  apt-get install -y -qq "${missing[@]}" >/dev/null
  echo "lapack and build tools: installed ${missing[*]}"
fi

# --- 3. chromium (headless report and web page tests) ----------------------------------------------------------
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: present"
else
  apt_update
  apt-get install -y -qq chromium >/dev/null
  echo "chromium: installed $(dpkg-query -W -f='${Version}' chromium)"
fi
