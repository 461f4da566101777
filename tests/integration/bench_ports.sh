#!/bin/bash
# bench_ports.sh: a benchmark (not a test; the suite does not run it).
#
# How much it costs lwvhostd to send frames off the host through each kind
# of port that is not a VM, in one run, alternating the kinds round by round:
#   tap     --tap, the tap in a network namespace (the kernel takes each
#           frame in write(2));
#   tapbr   --tap, the tap in a Linux bridge with one end of a veth pair
#           whose other end is in the namespace: how a host puts a tap's
#           VMs on a NIC without an uplink (the bridge, then the veth);
#   uplink  --uplink on one end of a veth pair whose other end is in the
#           namespace (AF_PACKET, sendmmsg);
#   uplinkqb  the same uplink with qdisc_bypass=on (PACKET_QDISC_BYPASS);
#   uplinkxdp   the same veth, the uplink in mode=xdp (AF_XDP, copy mode;
#           XDP program native on the veth);
#   uplinkxdpg  the same with xdp_mode=generic;
#   vxlan   --vxlan over a veth pair to a Linux VXLAN device (VNI 42) in the
#           namespace (encapsulation, UDP sendmmsg).
# One userspace VM (lwvhost-bench, --topology out) streams 64-byte frames at
# full rate to a MAC no VM has, so the switch floods every frame out of the
# one other port.  The daemon runs pinned to CPU 0, the bench to CPU 1.
# Per round and kind: the frames per second the daemon took from the VM,
# the share of them the namespace's interface received (the rest were
# dropped on the way out: a full socket or tap), the daemon's CPU (% of a
# core) and its CPU time per frame.  The last lines give each kind's mean
# against the first kind's (tapbr by default), from the same run.
#
# Usage: tests/integration/bench_ports.sh [ROUNDS [SECONDS]]   (default 3 5)
# Env: BUILD (default build); LWVT_PORTS (default "tapbr uplink"; any of tap,
#      tapbr, uplink, uplinkqb, uplinkxdp, uplinkxdpg, vxlan); LWVT_POLICY (default notify); LWVT_SIZE (frame bytes,
#      default 64); LWVHOSTD_ARGS (more daemon options).
# Needs: root, iproute2, jq.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
ROUNDS=${1:-3}
SECS=${2:-5}
read -r -a KINDS <<<"${LWVT_PORTS:-tapbr uplink}"
POLICY=${LWVT_POLICY:-notify}
SIZE=${LWVT_SIZE:-64}
NAME=bench_ports
log()  { echo "$NAME: $*" >&2; }
fail() { echo "$NAME: FAIL: $*" >&2; exit 1; }
skip() { echo "$NAME: SKIP: $*" >&2; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (namespace, tap, veth)"
command -v ip >/dev/null || skip "ip missing (apt-get install iproute2)"
command -v jq >/dev/null || skip "jq missing (apt-get install jq)"
D=$BUILD/lwvhostd
B=$BUILD/lwvhost-bench
[ -x "$D" ] && [ -x "$B" ] || fail "$D or $B not built (run make)"
for k in "${KINDS[@]}"; do
    case $k in tap|tapbr|uplink|uplinkqb|uplinkxdp|uplinkxdpg|vxlan) ;;
    *) fail "unknown port kind '$k' (tap, tapbr, uplink, uplinkqb, uplinkxdp, uplinkxdpg, vxlan)" ;;
    esac
done

T=$(mktemp -d /tmp/lwv-bench-ports.XXXXXX) || fail "mktemp"
NS=lwvbp$$
DPID=
cleanup() {
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    ip link del lwvbu0 2>/dev/null
    ip link del lwvbx0 2>/dev/null
    ip link del lwvbb0 2>/dev/null
    ip link del lwvbbr 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS" || fail "ip netns add"
ip -n "$NS" link set lo up
# The interface in the namespace whose received frames count as delivered.
declare -A PEER=([tap]=lwvbt0 [tapbr]=lwvbb1 [uplink]=lwvbu1 [uplinkqb]=lwvbu1 [uplinkxdp]=lwvbu1
                 [uplinkxdpg]=lwvbu1 [vxlan]=vx42)
for k in "${KINDS[@]}"; do
    case $k in
    tapbr)
        ip link add lwvbbr type bridge && ip link set lwvbbr up || fail "bridge"
        ip link add lwvbb0 type veth peer name lwvbb1 netns "$NS" || fail "veth"
        ip link set lwvbb0 master lwvbbr && ip link set lwvbb0 up && ip -n "$NS" link set lwvbb1 up ||
            fail "veth into the bridge" ;;
    uplink|uplinkqb|uplinkxdp|uplinkxdpg)
        ip link show lwvbu0 >/dev/null 2>&1 && continue
        ip link add lwvbu0 type veth peer name lwvbu1 netns "$NS" || fail "veth"
        ip link set lwvbu0 up && ip -n "$NS" link set lwvbu1 up || fail "veth up" ;;
    vxlan)
        ip link add lwvbx0 type veth peer name lwvbx1 netns "$NS" || fail "veth"
        ip addr add 192.168.78.1/24 dev lwvbx0 && ip link set lwvbx0 up || fail "veth up"
        ip -n "$NS" addr add 192.168.78.2/24 dev lwvbx1 && ip -n "$NS" link set lwvbx1 up ||
            fail "veth up (netns)"
        ip -n "$NS" link add vx42 type vxlan id 42 local 192.168.78.2 remote 192.168.78.1 \
            dstport 4789 dev lwvbx1 && ip -n "$NS" link set vx42 up || fail "vxlan (netns)" ;;
    esac
done

peer_rx() { ip -n "$NS" -j -s link show dev "$1" | jq '.[0].stats64.rx.packets'; }

# run_one KIND: one daemon with vm0 and a port of KIND, one bench run;
# prints "pps delivered% cpu% ns_per_frame".
run_one() {
    local k=$1 port rx0 rx1 j
    case $k in
    tap) port=(--tap lwvbt0) ;;
    tapbr) port=(--tap lwvbt1) ;;
    uplink) port=(--uplink "up0,ifname=lwvbu0") ;;
    uplinkqb) port=(--uplink "up0,ifname=lwvbu0,qdisc_bypass=on") ;;
    uplinkxdp) port=(--uplink "up0,ifname=lwvbu0,mode=xdp,xdp_mode=native") ;;
    uplinkxdpg) port=(--uplink "up0,ifname=lwvbu0,mode=xdp,xdp_mode=generic") ;;
    vxlan) port=(--vxlan "vx0,local=192.168.78.1,remote=192.168.78.2,vni=42") ;;
    esac
    rm -f "$T"/*.sock
    # shellcheck disable=SC2086
    taskset -c 0 "$D" --port "vm0,path=$T/vm0.sock" "${port[@]}" --ctl "$T/ctl.sock" \
        --policy "$POLICY" --log-level warn ${LWVHOSTD_ARGS:-} </dev/null >>"$T/lwvhostd.log" 2>&1 &
    DPID=$!
    local n=0
    until [ -S "$T/vm0.sock" ] && [ -S "$T/ctl.sock" ]; do
        n=$((n + 1)); [ $n -ge 100 ] && fail "lwvhostd did not start: $(tail -3 "$T/lwvhostd.log")"
        sleep 0.1
    done
    if [ "$k" = tap ]; then
        ip link set lwvbt0 netns "$NS" && ip -n "$NS" link set lwvbt0 up || fail "tap into netns"
    elif [ "$k" = tapbr ]; then
        ip link set lwvbt1 master lwvbbr && ip link set lwvbt1 up || fail "tap into the bridge"
    fi
    rx0=$(peer_rx "${PEER[$k]}")
    j=$("$B" run --attach "$T/ctl.sock" --sock-dir "$T" --vms 1 --topology out --size "$SIZE" \
        --seconds "$SECS" --warmup 1 --bench-cpu 1 --backend-cpu 0 --json 2>"$T/bench.err") ||
        fail "$k: lwvhost-bench failed: $(tail -3 "$T/bench.err")"
    rx1=$(peer_rx "${PEER[$k]}")
    kill "$DPID"; wait "$DPID" 2>/dev/null; DPID=
    echo "$j" | jq -r --argjson d $((rx1 - rx0)) \
        '"\(.data_pps) \(if .tx_frames > 0 then 100 * $d / .tx_frames else 0 end) \(.backend_cpu_pct) \(if .data_pps > 0 then .backend_cpu_pct * 1e7 / .data_pps else 0 end)"'
}

calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
declare -A SUM_PPS SUM_NS
printf '%-10s %6s %12s %10s %8s %10s\n' kind round "taken f/s" delivered "CPU %" "ns/frame"
for r in $(seq 1 "$ROUNDS"); do
    for k in "${KINDS[@]}"; do
        read -r pps del cpu ns < <(run_one "$k")
        [ -n "${ns:-}" ] || fail "$k: no figures"
        printf '%-10s %6s %12.0f %9.1f%% %8.1f %10.1f\n' "$k" "$r" "$pps" "$del" "$cpu" "$ns"
        SUM_PPS[$k]=$(calc "${SUM_PPS[$k]:-0} + $pps")
        SUM_NS[$k]=$(calc "${SUM_NS[$k]:-0} + $ns")
    done
done
ref=${KINDS[0]}
for k in "${KINDS[@]}"; do
    printf '%-10s mean %12.0f f/s %10.1f ns/frame   vs %s: %.2fx frames/s, %.2fx CPU per frame\n' \
        "$k" "$(calc "${SUM_PPS[$k]} / $ROUNDS")" "$(calc "${SUM_NS[$k]} / $ROUNDS")" \
        "$ref" "$(calc "${SUM_PPS[$k]} / ${SUM_PPS[$ref]}")" "$(calc "${SUM_NS[$k]} / ${SUM_NS[$ref]}")"
done
