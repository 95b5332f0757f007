#!/usr/bin/env bash
# Builds the desktop app's Linux packages, .deb and .rpm, with the Tauri CLI
# (npm's @tauri-apps/cli, a prebuilt binary). Installs what it needs first.
#   scripts/package.sh           release build: $CARGO_TARGET_DIR/release/bundle/{deb,rpm}/
#   scripts/package.sh --debug   the dev profile, sharing the test build (what CI installs)
# Windows and macOS installers are built on their own runners:
# .github/workflows/desktop-installers.yml.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
holdfast_deps run
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
npx tauri build --bundles deb,rpm "$@" >&2
profile=release
for a in "$@"; do [ "$a" = --debug ] && profile=debug; done
ls "$CARGO_TARGET_DIR/$profile/bundle/deb/"*.deb "$CARGO_TARGET_DIR/$profile/bundle/rpm/"*.rpm
