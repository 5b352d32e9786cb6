#!/usr/bin/env bash
# make-kquant-model.sh IN.gguf OUT.gguf TYPE [THREADS]: a mixed-type copy of a (synthesised) model made by the
# llama.cpp reference's quantizer, for benchmarking the K-quant kernels on the files people download:
#   build/src/hearth synth --preset e2b --wtype Q8_0 --vocab ../shared/testdata/vocab/ggml-vocab-gemma-4.gguf -o e2b-q8_0.gguf
#   scripts/make-kquant-model.sh e2b-q8_0.gguf e2b-q4_k_m.gguf Q4_K_M
# Needs the reference (scripts/setup-reference.sh). A quantised source is re-quantised: fine for speed work,
# not for numerics (synthesise F32 or F16 first for that).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 IN.gguf OUT.gguf TYPE [THREADS]" >&2; exit 2; }
REF=${HEARTH_REF_DIR:-$HOME/.cache/hearth-ref}
[ -f "$REF/env.sh" ] || { echo "make-kquant-model: no llama.cpp reference in $REF (run scripts/setup-reference.sh)" >&2; exit 1; }
# shellcheck disable=SC1091
. "$REF/env.sh"
INC=$REF/llama-include
LIBLLAMA=$(find "$LLAMA_BINS" -maxdepth 1 -name 'libllama.v*.so' | head -n 1)
LIBGGML=$(find "$LLAMA_BINS" -maxdepth 1 -name 'libggml.v*.so' | head -n 1)
TOOL=$REF/llquantize
if [ ! -x "$TOOL" ] || [ bench/reference/llquantize.c -nt "$TOOL" ]; then
  gcc -O2 -std=gnu11 -Wall -Werror -I"$INC/include" -I"$INC/ggml/include" bench/reference/llquantize.c -o "$TOOL" \
      -L"$LLAMA_BINS" -l:"$(basename "$LIBLLAMA")" -l:"$(basename "$LIBGGML")" -l:libggml-base.so -Wl,-rpath,"$LLAMA_BINS"
fi
exec "$TOOL" "$@"
