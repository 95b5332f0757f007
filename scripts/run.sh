#!/usr/bin/env bash
# Shares this screen: builds Holdfast, starts a host with an embedded
# signalling server, and prints the ID, code and viewer link to give out.
# Without a display ($DISPLAY unset) it starts a virtual one (Xvfb) showing a
# test pattern, so there is still something to watch.
# Extra arguments go to holdfast-host, e.g. `--serve 0.0.0.0:8443` to accept
# viewers from other machines (HTTPS with a self-signed certificate).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
holdfast_deps run

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
npm run --silent build >/dev/null
# The default profile optimises the media and transport path fully (see
# Cargo.toml) and shares its build with scripts/test.sh.
cargo build --quiet --workspace --bins
bin="$CARGO_TARGET_DIR/debug"

if [ -z "${DISPLAY:-}" ]; then
  export DISPLAY=:77
  echo "holdfast: no display found; starting a virtual one ($DISPLAY, 1920x1080) with a test pattern" >&2
  Xvfb "$DISPLAY" -screen 0 1920x1080x24 -nolisten tcp >/dev/null 2>&1 &
  # Not `exec` below: this shell must outlive the host to stop what it started.
  trap 'kill $(jobs -p) 2>/dev/null' EXIT
  for _ in $(seq 50); do xdpyinfo -display "$DISPLAY" >/dev/null 2>&1 && break; sleep 0.1; done
  # The pattern exits when its stdin closes; a FIFO held open by this shell keeps it alive.
  fifo=$(mktemp -u); mkfifo "$fifo"; exec 3<>"$fifo"; rm "$fifo"
  "$bin/holdfast-testpattern" <&3 > /dev/null &
fi
"$bin/holdfast-host" "$@"
