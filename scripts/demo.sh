#!/usr/bin/env bash
# The main job: set up, build hearth, synthesise the built-in demo model and generate text with it.
# The demo model has RANDOM weights (no download needed): its text is noise; the point is the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
mkdir -p out
[ -f out/demo.gguf ] || ./build/src/hearth synth --preset tiny-dense --wtype Q8_0 --out out/demo.gguf
./build/src/hearth generate -m out/demo.gguf -p "Once upon a time" -n 48 --seed 1
