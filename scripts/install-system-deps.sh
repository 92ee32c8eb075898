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
