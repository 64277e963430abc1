#!/usr/bin/env bash
# Starts Debian's real Janus 1.1.2 (`apt-get install -y janus`) as an interop reference peer,
# with the minimal config of tests/janus/janus-config/ (VideoRoom plugin, WebSocket + HTTP
# transports on 127.0.0.1, no Admin API, no STUN/TURN).
#
#   tests/janus/run_real_janus.sh WS_PORT HTTP_PORT [RUN_DIR]
#
# Runs Janus in the BACKGROUND and returns once both transports answer (or fails):
#   - stdout: exactly one line, the Janus PID;
#   - RUN_DIR (default: a fresh `mktemp -d /tmp/janus-run.XXXXXX`, named on stderr) holds
#     conf/ (the config copy with the ports filled in), janus.pid and janus.log;
#   - exit 0 when ready; exit 1 (Janus killed, log tail on stderr) when it did not come up
#     within JANUS_START_TIMEOUT seconds (default 15); exit 2 on bad arguments.
# Stop it with `kill "$(cat RUN_DIR/janus.pid)"` (SIGTERM; Janus exits within ~2 s) and
# remove RUN_DIR when done. The WebSocket API is ws://127.0.0.1:WS_PORT (subprotocol
# janus-protocol), the HTTP API http://127.0.0.1:HTTP_PORT/janus.
#
# JANUS_BIND_IP (default 127.0.0.1) is the address both transports listen on. The test suite
# runs Janus inside a network namespace it creates (veth pair) with JANUS_BIND_IP set to the
# namespace's veth address, so all traffic stays inside namespaces of its own.
#
# ICE note: Janus never gathers loopback and pins its sockets to the NIC, so its only
# candidate is a NIC address and a 127.0.0.1-only peer cannot connect: the peers need a
# candidate on that NIC's network (jsep_peer.py --ice-addresses). See janus.jcfg.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONF_SRC="$HERE/janus-config"
JANUS_BIN="${JANUS_BIN:-/usr/bin/janus}"
START_TIMEOUT="${JANUS_START_TIMEOUT:-15}"
BIND_IP="${JANUS_BIND_IP:-127.0.0.1}"

log() { echo "[run_real_janus] $*" >&2; }

if [ $# -lt 2 ] || ! [[ "$1" =~ ^[0-9]+$ ]] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 WS_PORT HTTP_PORT [RUN_DIR]" >&2
    exit 2
fi
WS_PORT="$1"
HTTP_PORT="$2"
RUN_DIR="${3:-}"
if [ ! -x "$JANUS_BIN" ]; then
    log "$JANUS_BIN not found: apt-get install -y janus"
    exit 2
fi
if [ -z "$RUN_DIR" ]; then
    RUN_DIR="$(mktemp -d /tmp/janus-run.XXXXXX)"
fi
mkdir -p "$RUN_DIR/conf"
log "run dir $RUN_DIR"

# Config copy with the ports filled in (Janus has no command-line switch for transport ports).
for f in "$CONF_SRC"/*.jcfg; do
    sed -e "s/@WS_PORT@/$WS_PORT/g" -e "s/@HTTP_PORT@/$HTTP_PORT/g" -e "s/@BIND_IP@/$BIND_IP/g" \
        "$f" >"$RUN_DIR/conf/$(basename "$f")"
done

# -F: plugins/transports read their .jcfg from the copy; -C: the core config;
# -o: no colour codes in the log. Janus keeps running after this script returns.
"$JANUS_BIN" -F "$RUN_DIR/conf" -C "$RUN_DIR/conf/janus.jcfg" -o \
    </dev/null >"$RUN_DIR/janus.log" 2>&1 &
PID=$!
echo "$PID" >"$RUN_DIR/janus.pid"

fail() {
    log "$*"
    kill "$PID" 2>/dev/null || true
    sleep 1
    kill -9 "$PID" 2>/dev/null || true
    tail -n 30 "$RUN_DIR/janus.log" >&2 || true
    exit 1
}

# Ready = the HTTP transport answers `info` and the WebSocket port accepts TCP connections
# (both transports are started by the same thread, in order). curl goes straight to
# 127.0.0.1, never through a proxy.
ws_ready() {
    (exec 3<>"/dev/tcp/$BIND_IP/$WS_PORT") 2>/dev/null
}
http_ready() {
    curl -s --noproxy '*' -m 2 "http://$BIND_IP:$HTTP_PORT/janus/info" 2>/dev/null | grep -q '"server_info"'
}

deadline=$((SECONDS + START_TIMEOUT))
until http_ready && ws_ready; do
    kill -0 "$PID" 2>/dev/null || fail "janus exited during start-up"
    [ "$SECONDS" -lt "$deadline" ] || fail "janus not ready on ws $WS_PORT / http $HTTP_PORT after ${START_TIMEOUT}s"
    sleep 0.2
done
log "janus $PID ready: ws://$BIND_IP:$WS_PORT http://$BIND_IP:$HTTP_PORT/janus (log $RUN_DIR/janus.log)"
echo "$PID"
