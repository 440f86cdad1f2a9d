#!/usr/bin/env bash
# Install Debian's headless Chromium and its WebDriver for tests/dashboard/test_browser.py.
# Idempotent: does nothing when both binaries are already there. Needs root (or sudo).
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install-browser: need root to apt-get install chromium chromium-driver" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
test -x /usr/bin/chromium && test -x /usr/bin/chromedriver
echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
