#!/usr/bin/env bash
# Installs the Debian packages listed in debian-packages.txt; quick when they are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t pkgs < <(grep -vE '^\s*(#|$)' debian-packages.txt)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# environment-modules conflicts with lmod as a Debian package, so its pure-Tcl modulecmd is
# unpacked into a folder of its own (the tests use both module systems).
ENVMODULES_DIR=${ENVMODULES_DIR:-/opt/environment-modules}
if [ ! -f "$ENVMODULES_DIR/usr/lib/x86_64-linux-gnu/modulecmd.tcl" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq environment-modules >/dev/null)
  mkdir -p "$ENVMODULES_DIR"
  dpkg -x "$tmp"/environment-modules_*.deb "$ENVMODULES_DIR"
  rm -rf "$tmp"
fi

# environment-modules 4.x (many centres still run it; it has no pushenv): Debian 11's 4.6.1,
# checked against the SHA-256 of bullseye's package index.
ENVMODULES4_DIR=${ENVMODULES4_DIR:-/opt/environment-modules-4}
if [ ! -f "$ENVMODULES4_DIR/usr/lib/x86_64-linux-gnu/modulecmd.tcl" ]; then
  tmp=$(mktemp -d)
  curl -fsS -o "$tmp/em4.deb" http://deb.debian.org/debian/pool/main/m/modules/environment-modules_4.6.1-1_amd64.deb
  echo "a5e95b92e246606456fe1d6fcfbb903802c3f4f93089bdb45072d574133128e3  $tmp/em4.deb" | sha256sum -c --quiet
  mkdir -p "$ENVMODULES4_DIR"
  dpkg -x "$tmp/em4.deb" "$ENVMODULES4_DIR"
  rm -rf "$tmp"
fi
