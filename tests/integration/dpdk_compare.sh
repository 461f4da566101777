#!/bin/bash
# dpdk_compare.sh: a benchmark (not a test; the suite does not run it).
#
# Packets per second received by one testpmd playing two VMs (two
# net_virtio_user ports, each with its own MAC) through
#   - lwvhostd (2 ports, pinned to CPU 0 with taskset), and
#   - DPDK's own vhost-user backend: testpmd with net_vhost0/net_vhost1 and
#     io forwarding, its forwarding lcore on CPU 0,
# with the SAME frontend command (its forwarding lcore on CPU 1), alternating
# the backends for a few rounds in one run.  Each measurement: start the
# frontend, warm up, then testpmd's own Rx-pps over the measuring window.  The
# backend's CPU use (all its threads, /proc/PID/stat) over the same window is
# shown too.
#
# Usage: tests/integration/dpdk_compare.sh [ROUNDS [SECONDS]]   (default 3 10)
# Env: BUILD (default build); LWVT_BACKENDS (default "lwvhostd dpdk"): any of
#      dpdk, lwvhostd, lwvhostd:POLICY (lwvhostd --policy POLICY, e.g.
#      "lwvhostd lwvhostd:poll dpdk"), each optionally followed by +packed
#      (that backend's frontend ports get packed_vq=1: packed virtqueues,
#      e.g. "lwvhostd:poll lwvhostd:poll+packed dpdk dpdk+packed" gives split
#      and packed figures in one run), and either lwvhostd form with
#      @BINARY appended to run another build (e.g. "lwvhostd@/tmp/old/lwvhostd
#      lwvhostd" compares a change against the binary before it, in one run);
#      LWVT_WARMUP seconds (default 2); LWVHOSTD_ARGS extra daemon arguments;
#      LWVT_FWD: "mac" (default) loops frames between the two ports as DPDK's
#      vhost loopback tests do (mac forwarding, --eth-peer at the other port,
#      `start tx_first 32`), so a learning switch sees two real stations;
#      "flowgen" sends new frames from one fixed source MAC on both ports;
#      LWVT_TXPKTS frame size in bytes (default 64); LWVT_FE_DEVARGS extra
#      net_virtio_user devargs, e.g. "in_order=1" or "packed_vq=1";
#      LWVT_PERF=DIR: profile each lwvhostd window with
#      `perf record -e cpu-clock -g` into DIR/KIND-ROUND.perf (the numbers of
#      such a run are not a benchmark: perf's sampling costs CPU too);
#      LWVT_QUIET_WAIT: before each window wait up to this many seconds
#      (default 120) for other processes to go quiet.  The "other CPU%" column
#      shows how quiet the machine really was; trust only rows where it is low.
# Needs (Debian 12): dpdk-dev (dpdk-testpmd, with the virtio and vhost PMDs); root.
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
LWVHOSTD=${LWVHOSTD:-$BUILD/lwvhostd}
LWVHOSTCTL=${LWVHOSTCTL:-$BUILD/lwvhostctl}
ROUNDS=${1:-3}
SECS=${2:-10}
WARMUP=${LWVT_WARMUP:-2}
read -r -a BACKENDS <<<"${LWVT_BACKENDS:-lwvhostd dpdk}"
NAME=dpdk_compare
# shellcheck source=tests/integration/lib-dpdk.sh
. tests/integration/lib-dpdk.sh

log()  { echo "$NAME: $*" >&2; }
fail() { echo "$NAME: FAIL: $*" >&2; exit 1; }

dpdk_require
for b in "${BACKENDS[@]}"; do
    b=${b/+packed/}
    case $b in
    lwvhostd*@*) [[ -x ${b#*@} ]] || fail "${b#*@} is not an executable" ;;
    lwvhostd|lwvhostd:*) [[ -x $LWVHOSTD ]] || fail "$LWVHOSTD not built (run make)" ;;
    dpdk) ;;
    *) fail "unknown backend $b" ;;
    esac
done
dpdk_hugepages_setup 1024
if pgrep -x dpdk-testpmd >/dev/null || pgrep -x lwvhostd >/dev/null; then
    log "warning: another dpdk-testpmd or lwvhostd is running; numbers will be off"
fi

T=$(mktemp -d /tmp/lwvt-compare.XXXXXX) || fail "mktemp"
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    dpdk_stop_all
    be_stop >/dev/null 2>&1
    if [[ -n ${LWV_KEEP:-} ]]; then log "kept $T"; else rm -rf "$T"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

MAC0=52:54:00:00:30:00
MAC1=52:54:00:00:30:01
FWD=${LWVT_FWD:-mac}
TXPKTS=${LWVT_TXPKTS:-64}
DEVARGS=${LWVT_FE_DEVARGS:+,$LWVT_FE_DEVARGS}
case $FWD in mac|flowgen) ;; *) fail "LWVT_FWD must be mac or flowgen" ;; esac
[[ $TXPKTS =~ ^[0-9]+$ ]] && (( TXPKTS >= 64 && TXPKTS <= 9000 )) || fail "LWVT_TXPKTS: 64..9000"
FE_EAL=("--lcores=0@0,1@1" --no-pci --single-file-segments -m 512
        --vdev "net_virtio_user0,path=@DIR@/vm0.sock,queues=1,mac=$MAC0$DEVARGS"
        --vdev "net_virtio_user1,path=@DIR@/vm1.sock,queues=1,mac=$MAC1$DEVARGS")
FE_APP=(--forward-mode="$FWD" --nb-cores=1 --txpkts="$TXPKTS" --total-num-mbufs=16384
        "--eth-peer=0,$MAC1" "--eth-peer=1,$MAC0")
# mac forwarding moves what it receives: tx_first seeds the loop with 32
# bursts per port.  Large frames need mbufs that hold them.
START=start
[[ $FWD == mac ]] && START="start tx_first 32"
(( TXPKTS > 2000 )) && FE_APP+=(--mbuf-size=$((TXPKTS + 256)))
CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: user+system clock ticks of all of PID's threads.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }   # the fields after "(comm) "
    local -a f
    read -r -a f <<<"$stat"
    echo $(( f[11] + f[12] ))   # fields 14 and 15 of the full line
}

# show_logs DIR: the end of a measurement's logs, to see why it failed.
show_logs() {
    local f
    for f in "$1"/*.log; do
        [[ -s $f ]] || continue
        echo "----- ${f#"$T"/} -----" >&2
        tail -n 40 "$f" >&2
    done
}

# busy_ticks: clock ticks all CPUs spent busy (user..steal, not idle/iowait).
busy_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# measure BACKEND ROUND: sets RESULT to "BACKEND ROUND PPS0 PPS1 CPU% OTHER%",
# OTHER% being what everything but the backend and the frontend used (noise).
# (Not run in a subshell, so the EXIT trap knows every process it started.)
measure() {
    local kind=$1 round=$2
    local dir=$T/${kind//[^A-Za-z0-9:._-]/_}-$round
    mkdir -p "$dir"
    local spec=$kind ring=
    [[ $spec == *+packed* ]] && { spec=${spec/+packed/}; ring=,packed_vq=1; }
    # be_start runs $LWVHOSTD: a local here overrides it for this backend.
    local LWVHOSTD=$LWVHOSTD
    [[ $spec == *@* ]] && { LWVHOSTD=${spec#*@}; spec=${spec%%@*}; }
    local be=${spec%%:*}
    local LWVHOSTD_ARGS=${LWVHOSTD_ARGS:-}
    [[ $spec == lwvhostd:* ]] && LWVHOSTD_ARGS+=" --policy ${spec#lwvhostd:}"
    be_start "$be" "$dir" 2 0 || { log "cannot start $kind"; show_logs "$dir"; return 1; }
    local bepid=$BE_PID
    [[ $spec == dpdk ]] && bepid=${_DPDK_PID[be]}
    local -a eal=("${FE_EAL[@]//@DIR@/$dir}")
    eal=("${eal[@]//queues=1,/queues=1$ring,}")
    if ! dpdk_start fe "$dir/frontend.log" "${eal[@]}" -- "${FE_APP[@]}"; then
        be_stop
        show_logs "$dir"
        return 1
    fi
    if [[ $(dpdk_nb_ports fe) != 2 ]]; then
        log "frontend has $(dpdk_nb_ports fe) ports, expected 2"
        dpdk_stop fe; be_stop
        show_logs "$dir"
        return 1
    fi
    dpdk_cmd fe "$START"
    sleep "$WARMUP"
    dpdk_port_stats fe >/dev/null          # testpmd's pps window starts here
    local fepid=${_DPDK_PID[fe]}
    local c0 c1 f0 f1 a0 a1 w0= w1=
    [[ $be == lwvhostd ]] && w0=$(worker_passes)
    a0=$(busy_ticks); c0=$(cpu_ticks "$bepid"); f0=$(cpu_ticks "$fepid")
    if [[ -n ${LWVT_PERF:-} && $be == lwvhostd ]]; then
        mkdir -p "$LWVT_PERF"
        perf record -q -e cpu-clock -g -p "$bepid" -o "$LWVT_PERF/${kind//[^A-Za-z0-9:._-]/_}-$round.perf" \
            -- sleep "$SECS" >/dev/null 2>&1 || log "perf record failed"
    else
        sleep "$SECS"
    fi
    local stats
    stats=$(dpdk_port_stats fe)
    a1=$(busy_ticks); c1=$(cpu_ticks "$bepid"); f1=$(cpu_ticks "$fepid")
    [[ $be == lwvhostd ]] && w1=$(worker_passes)
    local ok=1
    be_alive || { log "$kind died during the measurement"; ok=; }
    dpdk_stop fe
    be_stop || log "$kind did not stop cleanly"
    local p0 p1
    p0=$(awk '$1 == 0 { print $4 }' <<<"$stats")
    p1=$(awk '$1 == 1 { print $4 }' <<<"$stats")
    if [[ -z $ok || ! $p0 =~ ^[0-9]+$ || ! $p1 =~ ^[0-9]+$ ]]; then
        log "no valid measurement ($kind, round $round)"
        show_logs "$dir"
        return 1
    fi
    local cpu other
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v s="$SECS" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
    other=$(awk -v t=$((a1 - a0 - (c1 - c0) - (f1 - f0))) -v hz="$CLK_TCK" -v s="$SECS" \
                'BEGIN { if (t < 0) t = 0; printf "%.0f", 100 * t / hz / s }')
    local idle=-
    if [[ -n $w0 && -n $w1 ]]; then
        idle=$(awk -v a="$w0" -v b="$w1" 'BEGIN { split(a, x, " "); split(b, y, " ");
            p = y[1] - x[1]; e = y[2] - x[2]; if (p > 0) printf "%.0f", 100 * e / p; else print "-" }')
    fi
    RESULT="$kind $round ${p0:-0} ${p1:-0} $cpu $other $idle"
}

# worker_passes: "PASSES EMPTY_PASSES" summed over lwvhostd's workers.
worker_passes() {
    lwvd_json 2>/dev/null | jq -r '[.workers[].passes] as $p | [.workers[].empty_passes] as $e
        | "\($p | add) \($e | add)"' 2>/dev/null
}

# wait_quiet: wait (up to LWVT_QUIET_WAIT seconds, default 120) until other
# processes use less than 10% of a CPU over 2 s; nothing of ours runs then.
wait_quiet() {
    local limit=${LWVT_QUIET_WAIT:-120} waited=0 a b
    while (( waited < limit )); do
        a=$(busy_ticks); sleep 2; b=$(busy_ticks)
        waited=$((waited + 2))
        if (( (b - a) * 100 < 10 * 2 * CLK_TCK )); then
            (( waited > 2 )) && log "waited ${waited}s for the machine to be quiet"
            return 0
        fi
    done
    log "machine still busy after ${limit}s; measuring anyway"
}

results=()
for (( r = 1; r <= ROUNDS; r++ )); do
    order=("${BACKENDS[@]}")
    if (( r % 2 == 0 )); then   # every other round in reverse order
        order=()
        for (( i = ${#BACKENDS[@]} - 1; i >= 0; i-- )); do order+=("${BACKENDS[i]}"); done
    fi
    for b in "${order[@]}"; do
        wait_quiet
        log "round $r/$ROUNDS: $b, ${WARMUP}s warm-up + ${SECS}s"
        measure "$b" "$r" || fail "measurement failed ($b, round $r); LWV_KEEP=1 keeps the logs"
        results+=("$RESULT")
    done
done

echo
echo "$TXPKTS-byte frames, one testpmd (2x net_virtio_user${DEVARGS}, $FWD forwarding) on CPU 1; backend on CPU 0"
printf '%-24s %5s %12s %12s %12s %12s %10s %10s\n' backend round "rx pps p0" "rx pps p1" \
    "rx pps total" "backend CPU%" "other CPU%" "idle pass%"
for line in "${results[@]}"; do
    read -r b r p0 p1 cpu other idle <<<"$line"
    printf '%-24s %5s %12d %12d %12d %12s %10s %10s\n' "$b" "$r" "$p0" "$p1" $((p0 + p1)) "$cpu" \
        "$other" "$idle"
done
echo
printf '%-24s %5s %12s %12s %12s %12s %10s\n' backend mean "rx pps p0" "rx pps p1" "rx pps total" \
    "backend CPU%" "other CPU%"
printf '%s\n' "${results[@]}" | awk -v order="${BACKENDS[*]}" -v bytes="$TXPKTS" '
    { n[$1]++; p0[$1] += $3; p1[$1] += $4; cpu[$1] += $5; oth[$1] += $6
      t = $3 + $4; if (!($1 in lo) || t < lo[$1]) lo[$1] = t; if (t > hi[$1]) hi[$1] = t }
    END {
        k = split(order, b, " ")
        for (i = 1; i <= k; i++) {
            x = b[i]; if (!n[x]) continue
            tot[x] = (p0[x] + p1[x]) / n[x]
            printf "%-24s %5s %12d %12d %12d %12.0f %10.0f   (total min %d, max %d; %.2f Gbit/s)\n", x, "all",
                p0[x] / n[x], p1[x] / n[x], tot[x], cpu[x] / n[x], oth[x] / n[x], lo[x], hi[x],
                tot[x] * bytes * 8 / 1e9
        }
        # Each backend against DPDK with the same ring layout.
        for (i = 1; i <= k; i++) {
            x = b[i]; ref = (x ~ /\+packed/) ? "dpdk+packed" : "dpdk"
            if (x != ref && n[x] && n[ref] && tot[ref] > 0)
                printf "ratio %s / %s (total rx pps): %.2f\n", x, ref, tot[x] / tot[ref]
        }
    }'
noisy=$(printf '%s\n' "${results[@]}" | awk '$6 > 15 { n++ } END { print n + 0 }')
if (( noisy > 0 )); then
    echo "warning: in $noisy window(s) other processes used more than 15% CPU: the machine was not quiet"
fi
