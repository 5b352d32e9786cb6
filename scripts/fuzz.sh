#!/usr/bin/env bash
# Fuzzes the GGUF reader (and tokenizer loading) with libFuzzer under ASan+UBSan.
# Usage: scripts/fuzz.sh [SECONDS] (default 600). Needs clang (installed here if missing).
# Corpus: build-fuzz/corpus, seeded with the hostile-file catalogue of tests/gguf_hostile_test.cpp and the
# headers of the shared tiny models. Findings are written to build-fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
command -v clang++ >/dev/null || apt-get install -y --no-install-recommends clang >/dev/null
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_FUZZ=ON \
  -DHEARTH_TESTS=OFF -DHEARTH_BENCH=OFF >/dev/null
ninja -C build-fuzz gguf_fuzz
mkdir -p build-fuzz/corpus build-fuzz/findings
# Seeds: the hostile catalogue (written by its test) and the first 64 KiB of each shared model.
if [ -x build/tests/gguf_hostile_test ]; then
  HEARTH_HOSTILE_DIR="$PWD/build-fuzz/corpus" build/tests/gguf_hostile_test --gtest_filter='*CliReports*' >/dev/null || true
fi
if [ -x build/src/hearth ]; then  # a complete small model with a tokenizer, so that tokenizer loading is reached
  build/src/hearth synth -q --preset tiny-dense --layers 1 --pattern S --d-model 32 --heads 1 --kv-heads 1 \
    --head-dim 32 --ffn 32 --n-vocab 400 -o build-fuzz/corpus/small-model.gguf
fi
for f in ../shared/testdata/models/*.gguf; do
  [ -f "$f" ] && head -c 65536 "$f" > "build-fuzz/corpus/$(basename "$f").head"
done
build-fuzz/fuzz/gguf_fuzz build-fuzz/corpus -max_total_time="$secs" -max_len=131072 -rss_limit_mb=4096 \
  -artifact_prefix=build-fuzz/findings/ -print_final_stats=1
