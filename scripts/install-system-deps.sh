#!/usr/bin/env bash
# Install the Debian packages ambulink's build and tests need, only when they are missing.
# Runs as root on a fresh Debian machine (CI); elsewhere it prints what to install.
set -euo pipefail

missing=()
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
# Tests start their own redis-server on a free loopback port.
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# ... and their own mosquitto (MQTT telematics, issue 8).
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
# Browser pages are tested in Debian's headless Chromium (never a downloaded browser).
command -v chromium >/dev/null 2>&1 || missing+=(chromium chromium-driver)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
