#!/usr/bin/env bash
# Installs the pinned official `openai` and `ollama` npm clients (tests/server/package-lock.json) that the
# server integration tests and scripts/demo.sh drive. Without them the server tests skip with a message.
set -euo pipefail
cd "$(dirname "$0")/../tests/server"
if ! command -v npm >/dev/null; then
  echo "setup-node-tests: npm not found (scripts/install-deps.sh installs nodejs and npm)" >&2
  exit 1
fi
if [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.hearth-lock 2>/dev/null; then
  echo "setup-node-tests: node_modules up to date"
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.hearth-lock
echo "setup-node-tests: installed $(node -p "require('./node_modules/openai/package.json').version") openai, $(node -p "require('./node_modules/ollama/package.json').version") ollama"
