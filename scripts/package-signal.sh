#!/usr/bin/env bash
# Builds the holdfast-signal .deb: the server, its systemd unit, the
# configuration /etc/holdfast/signal.toml (a conffile: upgrades keep local
# edits), the browser viewer's pages and the deployment notes.
#   scripts/package-signal.sh [--binary PATH] [--out DIR]
# Without --binary it builds the release binary. Prints the package's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=""
out="$root/target/packages"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "package-signal.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
cd "$root"
if [ -z "$bin" ]; then
  cargo build --quiet --release -p holdfast-signal
  bin="${CARGO_TARGET_DIR:-$root/target}/release/holdfast-signal"
fi
[ -f ui/dist/index.html ] || npm run --silent build >&2
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -Dm755 "$bin" "$stage/usr/bin/holdfast-signal"
strip --strip-debug "$stage/usr/bin/holdfast-signal" 2>/dev/null || true
install -Dm644 packaging/signal/signal.toml "$stage/etc/holdfast/signal.toml"
install -Dm644 packaging/signal/holdfast-signal.service "$stage/lib/systemd/system/holdfast-signal.service"
mkdir -p "$stage/usr/share/holdfast-signal"
cp -r ui/dist "$stage/usr/share/holdfast-signal/ui"
install -Dm644 docs/deploy.md "$stage/usr/share/doc/holdfast-signal/deploy.md"
mkdir -p "$stage/DEBIAN"
install -m755 packaging/signal/postinst packaging/signal/postrm "$stage/DEBIAN/"
echo /etc/holdfast/signal.toml > "$stage/DEBIAN/conffiles"
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: holdfast-signal
Version: $version
Architecture: $arch
Maintainer: Holdfast <team@holdfast.invalid>
Depends: libc6 (>= 2.34), libgcc-s1, adduser
Installed-Size: $size
Section: net
Priority: optional
Homepage: https://holdfast.invalid
Description: Holdfast signalling server
 Rooms over WebSocket for Holdfast remote desktop sessions: the host's
 consent, session tokens and replay for reconnecting members, TURN
 credentials for a coturn relay, and the browser viewer's pages.
CONTROL
mkdir -p "$out"
deb="$out/holdfast-signal_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
