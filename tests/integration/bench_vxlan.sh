#!/bin/bash
# bench_vxlan.sh: a benchmark (not a test; the suite does not run it).
#
# What VXLAN between two daemons (two hosts) costs against the same pair of
# VMs on one daemon, in one run, alternating the two round by round:
#   one    one lwvhostd with ports vm0 and vm1;
#   vxlan  lwvhostd A with vm0 and a VXLAN port (local 127.0.0.2), lwvhostd
#          B with vm1 and a VXLAN port (local 127.0.0.3), VNI 42: every frame
#          from vm0 is encapsulated by A, crosses the host's loopback as UDP
#          and is decapsulated by B.
# lwvhost-bench plays both VMs (--attach, --topology pairs: vm0 streams
# 64-byte frames to vm1 at full rate).  The daemons run on CPU 0 (both of
# them in the vxlan case), the bench on CPU 1.  Per round: frames per second
# vm1 received, and the CPU time of every daemon over the whole bench run
# (/proc/PID/stat) per frame received.  The last lines give the means and
# the ratios of vxlan against one.
#
# Usage: tests/integration/bench_vxlan.sh [ROUNDS [SECONDS]]   (default 3 5)
# Env: BUILD (default build); LWVT_POLICY (default notify); LWVT_SIZE (frame
#      bytes, default 64; at most 1450 + 14 over VXLAN's default MTU);
#      LWVT_OLD=BINARY adds a third kind, "vxlan-old": the vxlan case with
#      another lwvhostd (e.g. the build before a change), in the same run.
# Needs: jq; no root (loopback only).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
ROUNDS=${1:-3}
SECS=${2:-5}
POLICY=${LWVT_POLICY:-notify}
SIZE=${LWVT_SIZE:-64}
NAME=bench_vxlan
log()  { echo "$NAME: $*" >&2; }
fail() { echo "$NAME: FAIL: $*" >&2; exit 1; }
skip() { echo "$NAME: SKIP: $*" >&2; exit 77; }

command -v jq >/dev/null || skip "jq missing (apt-get install jq)"
D=$BUILD/lwvhostd
B=$BUILD/lwvhost-bench
[ -x "$D" ] && [ -x "$B" ] || fail "$D or $B not built (run make)"
T=$(mktemp -d /tmp/lwv-bench-vxlan.XXXXXX) || fail "mktemp"
PIDS=()
stop_all() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    PIDS=()
}
trap 'stop_all; rm -rf "$T"' EXIT
trap 'exit 130' INT TERM

KINDS=(one vxlan)
if [ -n "${LWVT_OLD:-}" ]; then
    [ -x "$LWVT_OLD" ] || fail "LWVT_OLD=$LWVT_OLD is not an executable"
    KINDS+=(vxlan-old)
fi
BIN=$D
# start NAME ARGS...: an lwvhostd ($BIN) on CPU 0, its log T/NAME.log.
start() {
    local name=$1
    shift
    # shellcheck disable=SC2086
    taskset -c 0 "$BIN" "$@" --policy "$POLICY" --log-level warn ${LWVHOSTD_ARGS:-} \
        </dev/null >>"$T/$name.log" 2>&1 &
    PIDS+=($!)
}
# cpu_ticks: utime + stime of every running daemon, in clock ticks.
cpu_ticks() {
    local p s=0 f
    for p in "${PIDS[@]}"; do
        read -r -a f <"/proc/$p/stat" || fail "daemon $p is gone"
        # Fields 14 and 15 (utime, stime), counted after the ") " that
        # ends the command name.
        s=$((s + f[13] + f[14]))
    done
    echo $s
}
wait_socks() {
    local n=0 s
    for s in "$@"; do
        until [ -S "$s" ]; do
            n=$((n + 1)); [ $n -ge 100 ] && fail "$s did not appear: $(tail -3 "$T"/*.log)"
            sleep 0.1
        done
    done
}

# run_one KIND: prints "pps ns_per_frame".
run_one() {
    local k=$1 j c0 c1
    rm -f "$T"/*.sock
    BIN=$D
    [ "$k" = vxlan-old ] && BIN=$LWVT_OLD
    if [ "$k" = one ]; then
        start one --port "vm0,path=$T/vm0.sock" --port "vm1,path=$T/vm1.sock" --ctl "$T/ctl.sock"
    else
        start a --port "vm0,path=$T/vm0.sock" --ctl "$T/ctl.sock" \
            --vxlan "vx,local=127.0.0.2,remote=127.0.0.3,vni=42"
        start b --port "vm1,path=$T/vm1.sock" --ctl "$T/ctlb.sock" \
            --vxlan "vx,local=127.0.0.3,remote=127.0.0.2,vni=42"
        wait_socks "$T/ctlb.sock"
    fi
    wait_socks "$T/vm0.sock" "$T/vm1.sock" "$T/ctl.sock"
    c0=$(cpu_ticks)
    j=$("$B" run --attach "$T/ctl.sock" --sock-dir "$T" --vms 2 --topology pairs --size "$SIZE" \
        --seconds "$SECS" --warmup 1 --bench-cpu 1 --backend-cpu 0 --json 2>"$T/bench.err") ||
        fail "$k: lwvhost-bench failed: $(tail -3 "$T/bench.err")"
    c1=$(cpu_ticks)
    stop_all
    echo "$j" | jq -r --argjson t $((c1 - c0)) --argjson hz "$(getconf CLK_TCK)" \
        '"\(.data_pps) \(if .data_received > 0 then $t / $hz * 1e9 / .data_received else 0 end)"'
}

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
declare -A SUM_PPS SUM_NS
printf '%-6s %6s %12s %12s\n' kind round "frames/s" "ns/frame"
for r in $(seq 1 "$ROUNDS"); do
    for k in "${KINDS[@]}"; do
        read -r pps ns < <(run_one "$k")
        [ -n "${ns:-}" ] || fail "$k: no figures"
        printf '%-6s %6s %12.0f %12.1f\n' "$k" "$r" "$pps" "$ns"
        SUM_PPS[$k]=$(calc "${SUM_PPS[$k]:-0} + $pps")
        SUM_NS[$k]=$(calc "${SUM_NS[$k]:-0} + $ns")
    done
done
for k in "${KINDS[@]}"; do
    printf '%-6s mean %12.0f f/s %10.1f ns/frame (all daemons, whole run)   vs one: %.2fx frames/s, %.2fx CPU per frame\n' \
        "$k" "$(calc "${SUM_PPS[$k]} / $ROUNDS")" "$(calc "${SUM_NS[$k]} / $ROUNDS")" \
        "$(calc "${SUM_PPS[$k]} / ${SUM_PPS[one]}")" "$(calc "${SUM_NS[$k]} / ${SUM_NS[one]}")"
done
