#!/usr/bin/env bash
# Installs, with apt-get, whatever of Parley's build and test dependencies is missing.
# Idempotent and quiet when everything is there; both `make run` and `make test` call it.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev librocksdb-dev libzstd-dev libsodium-dev libssl-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libfmt-dev libgoogle-perftools-dev
  python3 python3-pytest clang-format
  chromium
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
