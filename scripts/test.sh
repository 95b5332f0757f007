#!/usr/bin/env bash
# Runs every Holdfast test: Rust unit and end-to-end tests (cargo-nextest)
# and the viewer's unit tests (Vitest). Installs what it needs first.
# End-to-end tests start their own Xvfb, Chromium and network namespaces
# (root is needed for `ip netns`). Ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
holdfast_deps test

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
log_dir="$PWD/test-artifacts"
mkdir -p "$log_dir"

echo "== building the viewer (ui/dist)"
npm run --silent build >/dev/null

echo "== building binaries"
cargo build --workspace --bins --quiet

echo "== Rust tests (nextest)"
set +e
cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$log_dir/nextest.log"
rust_status=${PIPESTATUS[0]}
echo "== viewer unit tests (vitest)"
npx vitest run --config ui/vite.config.ts --reporter=default --reporter=json --outputFile="$log_dir/vitest.json" 2>&1 | grep -v nodedir
ui_status=${PIPESTATUS[0]}
set -e

summary=$(grep -E '^\s*Summary \[' "$log_dir/nextest.log" | tail -1)
rust_passed=$(echo "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
rust_failed=$(echo "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
rust_skipped=$(echo "$summary" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || echo 0)
ui_passed=$(node -e "console.log(require('$log_dir/vitest.json').numPassedTests ?? 0)" 2>/dev/null || echo 0)
ui_failed=$(node -e "console.log(require('$log_dir/vitest.json').numFailedTests ?? 0)" 2>/dev/null || echo 0)
passed=$((rust_passed + ui_passed))
failed=$((rust_failed + ui_failed))
if [ "$rust_status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$ui_status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo
echo "Rust: $summary"
echo "Viewer (vitest): $ui_passed passed, $ui_failed failed"
echo "holdfast: $passed passed, $failed failed, $rust_skipped skipped"
[ "$failed" -eq 0 ]
