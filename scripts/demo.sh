#!/usr/bin/env bash
# The demo (make demo): first two "VMs" talk through lwvhostd and lwvhostctl
# shows what it sees; then lwvhost-bench compares the notification policies
# (notify, interval, adaptive, poll) from 1% to full load, prints the
# table and writes CSV, JSON, Markdown and SVG plots to results/demo-DATE
# (DEMO_OUT to choose). The VMs are userspace virtio-net frontends (the
# guest side of virtio in a plain process), so this needs nothing but the
# build. DEMO_SECONDS shortens each measured run (CI uses 1); DEMO_QEMU=1
# (root, QEMU installed) also boots two real Linux guests that ping.
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
kill "$DPID"; wait "$DPID" 2>/dev/null || true; DPID=

OUT=${DEMO_OUT:-results/demo-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$(dirname "$OUT")"
echo "== lwvhost-bench: notify, interval, adaptive and poll at 1, 5, 10, 25, 50 and 100% load (about two minutes)"
"$BUILD/lwvhost-bench" sweep --preset demo --out "$OUT" ${DEMO_SECONDS:+--seconds "$DEMO_SECONDS"}
echo
cat "$OUT/results.md"
echo "== plots: $OUT/*.svg"

if [ "${DEMO_QEMU:-0}" = 1 ]; then
    echo "== two QEMU guests ping each other through lwvhostd"
    bash tests/integration/qemu_ping.sh
fi
