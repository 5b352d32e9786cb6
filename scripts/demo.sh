#!/usr/bin/env bash
# The main job: set up, build hearth, synthesise the built-in demo model, start `hearth serve` on it, send one
# chat request through the official `openai` npm client (tests/server/demo.mjs), print the reply and the
# timings, and stop the server.
# The demo model has RANDOM weights (no download needed): its text is noise; the point is the pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
scripts/setup-node-tests.sh
mkdir -p out
[ -f out/demo.gguf ] || ./build/src/hearth synth --preset tiny-dense --wtype Q8_0 --out out/demo.gguf

log=$(mktemp)
./build/src/hearth serve out/demo.gguf --port "${HEARTH_DEMO_PORT:-0}" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 600); do  # the server prints "listening on http://127.0.0.1:PORT" once it accepts requests
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n1 || true)
  [ -n "$url" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then cat "$log"; echo "demo: hearth serve failed to start" >&2; exit 1; fi
  sleep 0.1
done
[ -n "$url" ] || { cat "$log"; echo "demo: hearth serve did not start" >&2; exit 1; }
sed 's/^/server| /' "$log"
node tests/server/demo.mjs "$url" demo
kill -TERM "$pid"
wait "$pid"
echo "demo: server stopped"
