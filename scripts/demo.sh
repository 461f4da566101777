#!/usr/bin/env bash
# The first demo: starts lwvhostd with two vhost-user ports, attaches two
# "VMs" to it and lets them talk through its switch, then shows what
# lwvhostctl sees. The VMs are userspace virtio-net frontends (build/tools/
# vuf-probe: the guest side of virtio in a plain process), so this needs
# nothing but the build. With root and QEMU installed (scripts/install-deps.sh),
# DEMO_QEMU=1 also boots two real Linux guests that ping each other.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/lwvhost-demo.XXXXXX)
DPID=
cleanup() {
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

echo "== starting lwvhostd with ports vm1 and vm2"
"$BUILD/lwvhostd" --port "vm1,path=$T/vm1.sock" --port "vm2,path=$T/vm2.sock" \
    --ctl "$T/ctl.sock" 2>"$T/lwvhostd.log" &
DPID=$!
for _ in $(seq 50); do [ -S "$T/ctl.sock" ] && break; sleep 0.1; done
ctl() { "$BUILD/lwvhostctl" -s "$T/ctl.sock" "$@"; }

echo "== two VMs exchange 200000 64-byte frames each way, then 20000 of 1500 bytes"
"$BUILD/tools/vuf-probe" -a "$T/vm1.sock" -b "$T/vm2.sock" -n 200000 -s 64 -2 &
PPID1=$!
sleep 0.05
ctl ports || true
wait $PPID1
"$BUILD/tools/vuf-probe" -a "$T/vm1.sock" -b "$T/vm2.sock" -n 20000 -s 1500 -2

echo "== lwvhostctl stats"
ctl stats

if [ "${DEMO_QEMU:-0}" = 1 ]; then
    echo "== two QEMU guests ping each other through lwvhostd"
    kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=
    bash tests/integration/qemu_ping.sh
fi
echo "== lwvhostd log"
cat "$T/lwvhostd.log"
