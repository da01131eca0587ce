#!/usr/bin/env bash
# Installs every Debian 12 package the build and the tests need. Idempotent: packages already
# present are skipped, and apt is only called when something is missing. Non-interactive.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  catch2 nlohmann-json3-dev libspdlog-dev libfmt-dev libeigen3-dev libcli11-dev
  libcurl4-openssl-dev libcpp-httplib-dev libbenchmark-dev libomp-dev clang-format
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
