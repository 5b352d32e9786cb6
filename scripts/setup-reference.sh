#!/usr/bin/env bash
# Installs the llama.cpp reference (node-llama-cpp's prebuilt llama.cpp, from npm) with the shared tools,
# when those tools are present (../shared/tools). Tests compare hearth with it and skip where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=${HEARTH_TOOLS:-../shared/tools}
if [ ! -x "$TOOLS/setup-llamacpp.sh" ]; then
  echo "setup-reference: no $TOOLS/setup-llamacpp.sh; skipping"
  exit 0
fi
"$TOOLS/setup-llamacpp.sh" >/dev/null
echo "setup-reference: llama.cpp reference ready in ${HEARTH_REF_DIR:-$HOME/.cache/hearth-ref}"
