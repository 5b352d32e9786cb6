#!/usr/bin/env bash
# Sets everything up and runs every test: dependencies, the llama.cpp reference (for parity tests; skipped
# if it cannot be installed), a release build with all tests, then an ASan+UBSan build with all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/setup-reference.sh || echo "test.sh: llama.cpp reference unavailable; parity tests against it will skip"
scripts/setup-node-tests.sh || echo "test.sh: openai/ollama npm clients unavailable; server SDK tests will skip"
scripts/build.sh release
(cd build && ctest --output-on-failure -j2 --timeout 1200)
scripts/build.sh asan
(cd build-asan && ctest --output-on-failure -j2 --timeout 1800)
echo "test.sh: all tests passed"
