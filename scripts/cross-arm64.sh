#!/usr/bin/env bash
# Builds the kernel layer and its unit tests for 64-bit ARM (Highway's NEON/SVE targets instead of x86's)
# and runs them under qemu-user, so the non-x86 dispatch paths are checked against the scalar references
# on an x86 machine. Not part of test.sh (it needs the arm64 cross toolchain and takes minutes); run it after
# changing src/kernels. Installs what it needs on Debian 12 (multiarch arm64 libhwy-dev and libgtest-dev).
# Usage: scripts/cross-arm64.sh [--no-install] [gtest filter]
set -euo pipefail
cd "$(dirname "$0")/.."
install=1
if [ "${1:-}" = "--no-install" ]; then install=0; shift; fi
filter=${1:-*}
if [ "$install" = 1 ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; apt-get update -q; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    g++-aarch64-linux-gnu qemu-user libhwy-dev:arm64 libgtest-dev:arm64 nlohmann-json3-dev >/dev/null
fi
out=build-arm64
mkdir -p "$out/include"
# Only the third-party headers from /usr/include (the cross compiler brings its own libc headers).
for h in hwy gtest gmock nlohmann; do ln -sfn "/usr/include/$h" "$out/include/$h"; done
CXX=aarch64-linux-gnu-g++
flags=(-std=c++20 -O2 -Wall -Wextra -Werror -ffp-contract=off -Isrc -Itests -isystem "$out/include"
       -DHEARTH_TESTDATA_DEFAULT=\"../shared/testdata\" -DHEARTH_TOOLS_DEFAULT=\"../shared/tools\"
       -DHEARTH_BINARY=\"/nonexistent\" -DHEARTH_SOURCE_DIR=\"$PWD\")
lib_sources=(src/core/fp16.cpp src/core/mapped_file.cpp src/gguf/types.cpp src/gguf/reader.cpp src/gguf/writer.cpp
             src/gguf/quantize.cpp src/kernels/quant.cpp src/kernels/ops.cpp src/kernels/matmul.cpp
             src/kernels/attention.cpp src/kernels/threadpool.cpp src/kernels/simd.cpp src/kernels/ggml_order.cpp
             src/kernels/gemm.cpp)
objs=()
for s in "${lib_sources[@]}"; do
  o="$out/$(basename "${s%.cpp}").o"
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find src/kernels src/core src/gguf -name '*.h' -newer "$o")" ]; then
    echo "compile $s" >&2
    "$CXX" "${flags[@]}" -c "$s" -o "$o"
  fi
  objs+=("$o")
done
# gemm_test's large matrices take more than 30 minutes under qemu: only with WITH_GEMM=1.
tests=(fp16_test simd_test quant_test ops_test)
[ "${WITH_GEMM:-0}" = 1 ] && tests+=(gemm_test)
for t in "${tests[@]}"; do
  "$CXX" "${flags[@]}" "tests/$t.cpp" "${objs[@]}" -o "$out/$t" \
    -L/usr/lib/aarch64-linux-gnu -lhwy -lgtest -lgtest_main -lpthread -ldl
  echo "== $t (qemu-aarch64)" >&2
  QEMU_LD_PREFIX=/usr/aarch64-linux-gnu qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/$t" \
    --gtest_filter="$filter" --gtest_brief=1
done
