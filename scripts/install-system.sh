#!/usr/bin/env bash
# Installs Mesa's llvmpipe Vulkan driver from bookworm-backports (bookworm's own Mesa is too old for Dawn).
# Idempotent; needs root. Skipped when a Vulkan ICD for lavapipe is already present.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 && [ "${FORCE_MESA_INSTALL:-0}" != 1 ]; then
  echo "mesa llvmpipe vulkan: present"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
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
apt-get update -qq
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
echo "mesa llvmpipe vulkan: installed $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
