#!/usr/bin/env bash
# Installs what pow.do's build, tests and demo need, and only what is missing.
# Safe to run again: every step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

WAILS_VERSION=v2.15.0
APT_PACKAGES=(
  build-essential pkg-config
  libgtk-3-dev libwebkit2gtk-4.1-dev      # Wails v2 on Debian (webkit2_41 build tag)
  libx11-dev libxtst-dev                  # robotgo
  xvfb xauth xdotool x11-utils imagemagick # capture tests, window screenshots
  chromium                                # Playwright drives Debian's Chromium
  nodejs npm
)

say() { printf 'setup: %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node may come from elsewhere than Debian's package (as on the dev machines): keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<<"${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "apt packages present"
fi

command -v go >/dev/null || { echo "setup: Go is not on PATH; install Go 1.26 (https://go.dev/doc/install) and rerun" >&2; exit 1; }
GOBIN_DIR="$(go env GOPATH)/bin"
if ! "$GOBIN_DIR/wails" version 2>/dev/null | grep -q "${WAILS_VERSION}"; then
  say "installing the Wails CLI ${WAILS_VERSION}"
  GOWORK=off GOFLAGS=-mod=mod go install "github.com/wailsapp/wails/v2/cmd/wails@${WAILS_VERSION}"
else
  say "wails ${WAILS_VERSION} present"
fi

# npm ci only when node_modules is missing or older than the lockfile.
while IFS= read -r lock; do
  dir=$(dirname "$lock")
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    say "$dir/node_modules up to date"
  fi
done < <(git ls-files '*package-lock.json' 2>/dev/null || find . -name package-lock.json -not -path '*/node_modules/*')
say "done"
