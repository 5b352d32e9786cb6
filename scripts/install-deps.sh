#!/usr/bin/env bash
# Installs every build and test dependency of hearth from Debian 12 packages (run as root, or with sudo).
set -euo pipefail
PKGS=(
  build-essential g++ cmake ninja-build pkg-config git ca-certificates
  libhwy-dev            # Google Highway: portable SIMD with runtime dispatch
  nlohmann-json3-dev    # JSON
  libcli11-dev          # command line parsing
  libcpp-httplib-dev    # HTTP server/client
  libcurl4-openssl-dev  # downloads
  libssl-dev            # sha256
  libsqlite3-dev        # SQL tool
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy # the shared llama.cpp comparison tools (compare.py)
  nodejs npm            # the llama.cpp reference (node-llama-cpp) and the SDK integration tests
  clang-14              # libFuzzer builds (scripts/fuzz.sh)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere (e.g. NodeSource); accept working binaries.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
