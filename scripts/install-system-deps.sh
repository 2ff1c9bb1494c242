#!/usr/bin/env bash
# Debian packages the tests and the demo need: the real Elixir compiler (analysis and scaffold checks),
# Neovim (the real-editor LSP test), cmake (the llama.cpp build) and dpkg-dev (unpacks Elixir's source
# package). Needs root or sudo; skips what is already there.
set -euo pipefail
need=()
command -v elixir >/dev/null || need+=(elixir)
command -v nvim >/dev/null || need+=(neovim)
command -v cmake >/dev/null || need+=(cmake)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
[ ${#need[@]} -eq 0 ] && { echo "system packages present"; exit 0; }
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
