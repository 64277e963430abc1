#!/usr/bin/env bash
# Installs what the end-to-end tests need: Debian's Chromium, a Python venv with aiortc
# (tests/.venv) and playwright-core + tcplayer.js (tests/browser/node_modules).
# Idempotent and quiet: a re-run on a prepared machine takes a few seconds.
# Run as root on Debian 12 (CI does: `bash tests/setup.sh`).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
AIORTC_VERSION="1.16.0"
PY="${PYTHON:-python3}"

log() { echo "[setup] $*" >&2; }

# Run a command with a time bound; print its output only if it fails.
quiet() {
    local limit="$1"; shift
    local out
    out="$(mktemp)"
    if ! timeout --kill-after=10 "$limit" "$@" >"$out" 2>&1; then
        log "FAILED ($limit bound): $*"
        tail -n 40 "$out" >&2
        rm -f "$out"
        return 1
    fi
    rm -f "$out"
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# --- 1. Chromium, ffprobe, Janus (Debian packages) --------------------------------------
# ffprobe (ffmpeg) checks that recordings are valid media files. Janus 1.1.2 is the reference
# the Janode scenario also runs against (inside a network namespace: iproute2; curl probes it);
# openssl makes the certificate of the HTTPS (TLS_CERT_FILE) test.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/ffprobe ] || [ ! -x /usr/bin/janus ] \
    || ! command -v ip >/dev/null || ! command -v curl >/dev/null \
    || ! command -v openssl >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    quiet 600 $SUDO apt-get update
fi
if [ ! -x /usr/bin/chromium ]; then
    log "installing chromium (apt)"
    quiet 1200 $SUDO apt-get install -y chromium
fi
if [ ! -x /usr/bin/ffprobe ]; then
    log "installing ffmpeg (apt)"
    quiet 1200 $SUDO apt-get install -y --no-install-recommends ffmpeg
fi
if [ ! -x /usr/bin/janus ] || ! command -v ip >/dev/null || ! command -v curl >/dev/null \
    || ! command -v openssl >/dev/null; then
    log "installing janus, iproute2, curl and openssl (apt)"
    quiet 1200 $SUDO apt-get install -y janus iproute2 curl openssl
fi

# --- 2. Python venv with aiortc ----------------------------------------------------------
VENV="$HERE/.venv"
if ! "$VENV/bin/python" -c "
import sys, importlib.metadata as m
sys.exit(0 if m.version('aiortc') == '$AIORTC_VERSION' and m.version('aiohttp') else 1)
" >/dev/null 2>&1; then
    log "creating venv $VENV with aiortc==$AIORTC_VERSION"
    if [ ! -x "$VENV/bin/pip" ]; then
        rm -rf "$VENV"
        if ! timeout 120 "$PY" -m venv "$VENV" >/dev/null 2>&1; then
            # Debian ships venv's pip bootstrap separately
            log "installing python3-venv (apt)"
            rm -rf "$VENV"
            export DEBIAN_FRONTEND=noninteractive
            quiet 600 $SUDO apt-get update
            quiet 600 $SUDO apt-get install -y python3-venv
            quiet 120 "$PY" -m venv "$VENV"
        fi
    fi
    quiet 600 "$VENV/bin/pip" install --disable-pip-version-check --no-input -q \
        --only-binary=:all: "aiortc==$AIORTC_VERSION" aiohttp
fi

# --- 3. playwright-core (no browser download: Debian's /usr/bin/chromium is used) ---------
BROWSER="$HERE/browser"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    log "node and npm are required (Node 20 is part of this machine kind); not found in PATH"
    exit 1
fi
if [ ! -f "$BROWSER/node_modules/playwright-core/package.json" ] \
    || [ ! -f "$BROWSER/node_modules/tcplayer.js/package.json" ] \
    || [ ! -f "$BROWSER/node_modules/janode/package.json" ] \
    || [ ! -f "$BROWSER/node_modules/janus-gateway/package.json" ] \
    || [ "$BROWSER/package-lock.json" -nt "$BROWSER/node_modules/.package-lock.json" ]; then
    log "installing playwright-core, tcplayer.js, janode and janus-gateway (npm ci)"
    (
        cd "$BROWSER"
        export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
        # Janode needs unix-dgram, a native addon: node-gyp builds it against the system Node's
        # headers (Debian's nodejs ships them) instead of downloading them.
        if [ -f /usr/include/node/node.h ]; then
            export npm_config_nodedir="${npm_config_nodedir:-/usr}"
        fi
        if [ -f package-lock.json ]; then
            quiet 600 npm ci --no-audit --no-fund --loglevel=error
        else
            quiet 600 npm install --no-audit --no-fund --loglevel=error
        fi
    )
fi

log "ok: chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), ffprobe $(ffprobe -version 2>/dev/null | awk 'NR==1 {print $3}'), aiortc $AIORTC_VERSION, playwright-core $(node -p "require('$BROWSER/node_modules/playwright-core/package.json').version"), tcplayer.js $(node -p "require('$BROWSER/node_modules/tcplayer.js/package.json').version")"
