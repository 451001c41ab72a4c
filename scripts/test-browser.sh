#!/usr/bin/env bash
# Browser tests: Playwright driving Debian's Chromium (never a downloaded browser).
# Screenshots land in artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p artifacts
export POWDO_BIN="${POWDO_BIN:-$PWD/bin}"

echo "== tracker UI under wails dev (Xvfb)"
(cd frontend && npm run --silent e2e)
echo "== tracker: the real built window under Xvfb"
(cd frontend && npm run --silent e2e:window)
echo "== work diary in Chromium"
(cd dvm/diary/e2e && node --test diary.test.mjs)
