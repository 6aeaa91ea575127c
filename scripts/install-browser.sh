#!/usr/bin/env bash
# Debian's headless Chromium for the review console's browser tests (Playwright drives it
# through executable_path; nothing is downloaded at test time). Installed with apt when
# missing; without apt (or root) it says what to install and leaves the rest of setup be.
set -uo pipefail
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null; }
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "warning: $CHROMIUM is missing: install Debian's chromium package for the console's browser tests" >&2
fi
exit 0
