#!/usr/bin/env bash
# Installs what medvault needs on this machine, only what is missing: Debian packages for Qt (offscreen and under
# Xvfb), a project virtual environment, and (with --node) the npm test peers in ./node_modules.
# Sourced or run by scripts/app and scripts/test; safe to run again and again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

want_node=0
[ "${1:-}" = "--node" ] && want_node=1

say() { printf 'medvault setup: %s\n' "$*" >&2; }

# --- Debian packages --------------------------------------------------------------------------------------------
debs=(libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 libglib2.0-0
      libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
      libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxrender1 libxi6 fonts-dejavu-core xvfb xauth strace
      poppler-utils libpulse0    # libpulse0: Qt Multimedia (the clinician's camera) will not load without it
      xdg-utils desktop-file-utils appstream shared-mime-info binutils)  # desktop integration; PyInstaller
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq >/dev/null
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python virtual environment ---------------------------------------------------------------------------------
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  say "creating the virtual environment in .venv"
  "$python" -m venv .venv
fi
# Only what pip installs counts: editing tool settings must not trigger a reinstall.
stamp=$(sed -n '/^\[build-system\]/,/^\[tool\.pytest/p' pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat .venv/.medvault-stamp 2>/dev/null)" != "$stamp" ]; then
  say "installing Python packages (first run takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$stamp" > .venv/.medvault-stamp
fi

# --- npm test peers (IPFS node, Ethereum node, Solidity compiler) -----------------------------------------------
if [ $want_node -eq 1 ]; then
  command -v node >/dev/null || { say "installing Node.js"; apt-get install -y -qq nodejs npm >/dev/null; }
  nstamp=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
  if [ "$(cat node_modules/.medvault-stamp 2>/dev/null)" != "$nstamp" ]; then
    say "installing npm test peers into ./node_modules"
    # Not 'npm ci': an optional dependency deep in js-ipfs (electron-eval -> headless) points at a git tarball that
    # npm never records in the lock file, so 'npm ci' calls the lock out of sync; 'npm install' honours the lock
    # and skips that optional package when it cannot be fetched.
    npm install --no-audit --no-fund --loglevel=error >/dev/null
    cat package.json package-lock.json | sha256sum | cut -c1-16 > node_modules/.medvault-stamp
  fi
fi

