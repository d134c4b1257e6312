#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard's browser tests, once: does nothing when it is there.
# Prints the browser's path. Needs root (or sudo) the first time.
set -euo pipefail

browser=/usr/bin/chromium
if [ -x "$browser" ]; then
  echo "$browser"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo -n)
  else
    echo "install-chromium.sh: Chromium is missing and installing it needs root: run 'apt-get install -y chromium' as root" >&2
    exit 1
  fi
fi

echo "install-chromium.sh: installing Debian's chromium package (and fonts for screenshots)" >&2
# apt holds a lock: if another test process installs at the same time, wait for it.
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-liberation fonts-dejavu-core >&2
echo "$browser"
