# lib-qemu.sh: shared by the QEMU integration tests (qemu_ping.sh,
# qemu_reconnect.sh).  Source it after setting NAME (the prefix for log
# lines); it defines the helpers below and nothing runs on sourcing.
#
#   qemu_require             skip (exit 77) unless QEMU, busybox, cpio, gzip,
#                            timeout are there; sets QEMU and BB
#   qemu_guest_image DIR     builds the busybox guest (tests/guest) into DIR
#   start_guest N MAC IP/PREFIX "lwv params" NETARGS...
#                            boots guest N in the background (serial log in
#                            $T/gN.log), with one virtio-net NIC on netdev n0
#   kill_wait PID SECONDS    SIGTERM, wait, then SIGKILL
#   wait_for SECONDS WHAT CMD...   poll CMD every 0.1 s; fail on timeout, or
#                            at once if the daemon $DPID (when set) died
#   clean_log FILE           a serial log without CRs and escape sequences
#   results FILE / has_result FILE "WORDS"   the guest's LWV-RESULT lines
#   alive PID
#   dump_logs LINES FILE...  the last LINES of each non-empty FILE
#   on_exit FUNC             on exit, SIGINT or SIGTERM: FUNC stops what the
#                            script started; then the logs on failure (the
#                            caller's show_logs) or with LWV_VERBOSE, T removed
#                            unless LWV_KEEP, a PASS/FAIL line with the time
#                            since START, and the exit status kept
# The caller owns T (a temp dir), START, DPID and show_logs.

log()  { echo "$NAME: $*"; }
skip() { echo "$NAME: SKIP: $*"; exit 77; }
fail() { echo "$NAME: FAIL: $*"; exit 1; }

qemu_require() {
    QEMU=$(command -v qemu-system-x86_64) ||
        skip "qemu-system-x86_64 missing (apt-get install qemu-system-x86)"
    local t b
    for t in cpio gzip timeout; do
        command -v $t >/dev/null 2>&1 || skip "$t missing"
    done
    BB=
    for b in /bin/busybox /usr/bin/busybox; do [ -x "$b" ] && { BB=$b; break; }; done
    [ -n "$BB" ] || skip "busybox missing (apt-get install busybox-static)"
}

qemu_guest_image() {
    tests/guest/mkinitramfs.sh "$1"
    local rc=$?
    [ $rc = 77 ] && skip "cannot build the guest image (see above)"
    [ $rc = 0 ] || fail "tests/guest/mkinitramfs.sh failed (rc=$rc)"
}

alive() { kill -0 "$1" 2>/dev/null; }

kill_wait() {
    local pid=$1 n=0
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || return 0
    while alive "$pid" && [ $n -lt $(($2 * 10)) ]; do
        sleep 0.1; n=$((n + 1))
    done
    if alive "$pid"; then
        log "pid $pid ignored SIGTERM, killing"
        kill -9 "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

wait_for() {
    local secs=$1 what=$2 n=0
    shift 2
    until "$@"; do
        n=$((n + 1))
        [ $n -ge $((secs * 10)) ] && fail "timed out after ${secs}s waiting for $what"
        if [ -n "${DPID:-}" ] && ! alive "$DPID"; then
            fail "lwvhostd exited while waiting for $what"
        fi
        sleep 0.1
    done
}

clean_log() { tr -d '\r' <"$1" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g'; }
results() { clean_log "$1" | grep -ao 'LWV-RESULT .*'; }
has_result() { results "$1" | grep -q "^LWV-RESULT $2\( \|\$\)"; }

# LWV_PACKED: "all" gives every guest's NIC packed virtqueues
# (packed=on), "1" only guest 1's (the others keep split rings).
nic_ring_opt() {
    case "${LWV_PACKED:-}" in
    all) echo ",packed=on" ;;
    "$1") echo ",packed=on" ;;
    esac
}

# LWV_NIC_OPTS: more virtio-net-pci properties for every guest's NIC
# (e.g. host_mtu=1450).
start_guest() {
    local n=$1 mac=$2 ip=$3 params=$4
    shift 4
    "$QEMU" -name "lwv-guest$n" -accel tcg -m 256 -smp 1 \
        -nodefaults -no-user-config -nographic -monitor none -no-reboot \
        -serial "file:$T/g$n.log" \
        -object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
        -kernel "$IMG/vmlinuz" -initrd "$IMG/initramfs.cpio.gz" \
        -append "console=ttyS0 quiet panic=-1 lwv.ip=$ip $params" \
        "$@" -device "virtio-net-pci,netdev=n0,mac=$mac,vectors=0,romfile=$(nic_ring_opt "$n")${LWV_NIC_OPTS:+,$LWV_NIC_OPTS}" \
        </dev/null >"$T/qemu$n.out" 2>&1 &
}

dump_logs() {
    local lines=$1 f
    shift
    for f in "$@"; do
        [ -s "$f" ] || continue
        echo "----- $(basename "$f") -----"
        clean_log "$f" | tail -n "$lines"
    done
    echo "----- end of logs -----"
}

on_exit() {
    trap "_qemu_exit $1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

_qemu_exit() {
    local rc=$?
    trap - EXIT INT TERM
    "$1"
    if [ "$rc" != 0 ] && [ "$rc" != 77 ] || [ -n "${LWV_VERBOSE:-}" ]; then
        show_logs
    fi
    if [ -n "${LWV_KEEP:-}" ]; then log "kept $T"; else rm -rf "$T"; fi
    if [ "$rc" = 0 ]; then
        log "PASS ($((SECONDS - START)) s)"
    elif [ "$rc" != 77 ]; then
        log "FAIL (rc=$rc, $((SECONDS - START)) s)"
    fi
    exit "$rc"
}
