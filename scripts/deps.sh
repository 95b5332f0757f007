# Installs what Holdfast needs on Debian (as root), idempotently. Sourced by
# scripts/run.sh and scripts/test.sh.
#   holdfast_deps run   - what sharing a screen needs
#   holdfast_deps test  - plus browsers, X tools and test services

HOLDFAST_APT_BUILD="pkg-config nasm clang g++ libssl-dev libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev libxdo-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libayatana-appindicator3-dev librsvg2-dev"
HOLDFAST_APT_RUN="xvfb x11-utils curl ca-certificates"
HOLDFAST_APT_TEST="chromium iproute2 xdotool imagemagick dbus dbus-x11 gstreamer1.0-libav gstreamer1.0-plugins-bad webkit2gtk-driver
  fonts-wqy-microhei"

holdfast_apt() {
  local missing=""
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "holdfast: installing Debian packages:$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
  fi
}

holdfast_deps() {
  local mode="$1"
  # shellcheck disable=SC2086
  if [ "$mode" = test ]; then
    holdfast_apt $HOLDFAST_APT_BUILD $HOLDFAST_APT_RUN $HOLDFAST_APT_TEST
  else
    holdfast_apt $HOLDFAST_APT_BUILD $HOLDFAST_APT_RUN
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
      echo "holdfast: installing Rust with rustup" >&2
      curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
    }
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if [ "$mode" = test ] && ! cargo nextest --version >/dev/null 2>&1; then
    echo "holdfast: installing cargo-nextest" >&2
    cargo install --locked cargo-nextest >&2
  fi
  # The desktop app's end-to-end tests drive it through tauri-driver (W3C
  # WebDriver in front of WebKitWebDriver).
  if [ "$mode" = test ] && ! command -v tauri-driver >/dev/null 2>&1; then
    echo "holdfast: installing tauri-driver" >&2
    cargo install --locked tauri-driver@2 >&2
  fi
  if ! command -v node >/dev/null 2>&1; then
    holdfast_apt nodejs npm
  fi
  # Front-end packages, reinstalled only when the lock file changes.
  local stamp=node_modules/.holdfast-lock-hash
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "holdfast: installing npm packages" >&2
    # `npm ci` rejects lock files written with omit-lockfile-registry-resolved
    # (they lack other platforms' optional packages); install keeps the locked versions.
    npm install --no-save --no-audit --no-fund --loglevel=error >&2
    echo "$want" > "$stamp"
  fi
}
