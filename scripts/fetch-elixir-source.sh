#!/usr/bin/env bash
# Fetch Elixir's own source (Debian source package `elixir-lang`, Apache-2.0) into .cache/elixir-src.
# It is the offline reference corpus for the analysis tests, the stdlib docs index and benchmarks.
set -euo pipefail
dest="${1:-$(cd "$(dirname "$0")/.." && pwd)/.cache/elixir-src}"
if [ -d "$dest/lib/elixir/lib" ]; then echo "elixir source already in $dest"; exit 0; fi
if ! grep -rqs '^Types: deb deb-src\|^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat > /etc/apt/sources.list.d/potion-deb-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -q
fi
work=$(mktemp -d)
(cd "$work" && apt-get source -q --download-only elixir-lang >/dev/null && dpkg-source -x --no-check ./*.dsc src >/dev/null)
mkdir -p "$(dirname "$dest")"
rm -rf "$dest" && mv "$work/src" "$dest" && rm -rf "$work"
echo "elixir source in $dest"
