# shellcheck shell=bash
# Helpers for driving DPDK's testpmd from the integration tests.  Source it.
#
# testpmd runs in interactive mode (-i) with its stdin on a fifo that this
# shell keeps open, so a test can `start`, `stop`, read `show port stats`
# and `quit` it whenever it likes; its stdout/stderr go to a log file,
# line-buffered.  Every testpmd started here is recorded and killed by
# dpdk_stop_all, which the caller must run from its EXIT trap.
#
#   dpdk_require                    exit 77 unless testpmd and the virtio/vhost PMDs exist
#   dpdk_hugepages_setup MB         mount hugetlbfs and reserve MB of 2 MiB pages (or exit 77)
#   dpdk_start NAME LOG EAL.. -- APP..   start testpmd, wait for its prompt
#   dpdk_cmd NAME LINE...           send command lines
#   dpdk_sync NAME [SECS]           wait until every command sent so far has run
#   dpdk_query NAME LINE            run one command, print what it printed
#   dpdk_wait_log NAME REGEX SECS   wait for an extended regex in the log
#   dpdk_port_stats NAME            print "PORT RXPKTS TXPKTS RXPPS TXPPS" lines
#   dpdk_stop NAME [SECS]           quit testpmd (kill it if it does not), clean up
#   dpdk_stop_all                   dpdk_stop every testpmd still running
#   dpdk_test_begin MB_LWV MB_DPDK TAG   the common start of a DPDK test (below)
#
# Environment: DPDK_TESTPMD (default dpdk-testpmd), DPDK_HUGEDIR (default: an
# existing hugetlbfs mount, else /dev/hugepages is mounted).

DPDK_TESTPMD=${DPDK_TESTPMD:-dpdk-testpmd}
DPDK_HUGEDIR=${DPDK_HUGEDIR:-}
DPDK_RUNDIR=${DPDK_RUNDIR:-/var/run/dpdk}
# All file prefixes made here start with this, followed by the shell's pid,
# so stale hugepage files of a killed run can be found and removed.
DPDK_PREFIX_BASE=lwvt

declare -A _DPDK_PID=() _DPDK_FD=() _DPDK_LOG=() _DPDK_PREFIX=() _DPDK_FIFO=()
_DPDK_SYNC_SEQ=0

_dpdk_msg() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

dpdk_skip() {
    _dpdk_msg "SKIP: $*"
    exit 77
}

# Skip (exit 77) when testpmd, or the two PMDs the tests use, are missing.
dpdk_require() {
    if ! command -v "$DPDK_TESTPMD" >/dev/null 2>&1; then
        dpdk_skip "$DPDK_TESTPMD not found (Debian: apt-get install dpdk-dev)"
    fi
    local pmd found
    for pmd in net_virtio net_vhost; do
        found=$(find /usr/lib /usr/local/lib /usr/lib64 -name "librte_${pmd}.so*" \
                     -print -quit 2>/dev/null)
        if [[ -z $found ]]; then
            dpdk_skip "DPDK PMD librte_${pmd} not installed (Debian: apt-get install librte-${pmd//_/-}23)"
        fi
    done
}

_dpdk_find_hugedir() {
    # A hugetlbfs mount of the default (2 MiB) page size.
    awk '$3 == "hugetlbfs" && $4 !~ /pagesize=1G/ { print $2; exit }' /proc/mounts
}

_dpdk_free_pages() { awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo; }
_dpdk_total_pages() { awk '/^HugePages_Total:/ { print $2 }' /proc/meminfo; }

# Remove hugepage files and runtime dirs left by testpmds of earlier runs whose
# test shell is gone (a SIGKILLed run cannot clean up after itself).
_dpdk_clean_stale() {
    local f base pid
    for f in "$DPDK_HUGEDIR/${DPDK_PREFIX_BASE}"_* "$DPDK_RUNDIR/${DPDK_PREFIX_BASE}"_*; do
        [[ -e $f ]] || continue
        base=${f##*/}
        pid=${base#"${DPDK_PREFIX_BASE}"_}
        pid=${pid%%_*}
        [[ $pid =~ ^[0-9]+$ ]] || continue
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -rf -- "$f"
        fi
    done
}

# dpdk_hugepages_setup MB: make sure MB megabytes of 2 MiB hugepages are free
# on a mounted hugetlbfs; raise vm.nr_hugepages if needed (never lowers it).
dpdk_hugepages_setup() {
    local mb=${1:-1024}
    local need=$(( (mb + 1) / 2 ))
    local size
    size=$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)
    [[ $size == 2048 ]] || dpdk_skip "default hugepage size is ${size:-unknown} kB, need 2048 kB"

    if [[ -z $DPDK_HUGEDIR ]]; then
        DPDK_HUGEDIR=$(_dpdk_find_hugedir)
    fi
    if [[ -z $DPDK_HUGEDIR ]]; then
        DPDK_HUGEDIR=/dev/hugepages
        mkdir -p "$DPDK_HUGEDIR" 2>/dev/null
        if ! mount -t hugetlbfs -o pagesize=2M nodev "$DPDK_HUGEDIR" 2>/dev/null; then
            dpdk_skip "cannot mount hugetlbfs on $DPDK_HUGEDIR"
        fi
    elif ! awk -v d="$DPDK_HUGEDIR" '$2 == d && $3 == "hugetlbfs" { ok = 1 } END { exit !ok }' /proc/mounts; then
        dpdk_skip "DPDK_HUGEDIR=$DPDK_HUGEDIR is not a hugetlbfs mount"
    fi
    export DPDK_HUGEDIR
    _dpdk_clean_stale

    local free total
    free=$(_dpdk_free_pages)
    if (( free < need )); then
        total=$(_dpdk_total_pages)
        echo $(( total + need - free )) > /proc/sys/vm/nr_hugepages 2>/dev/null
        free=$(_dpdk_free_pages)
    fi
    if (( free < need )); then
        dpdk_skip "need $need free 2 MiB hugepages, only $free available"
    fi
}

_dpdk_log_size() { stat -c %s "${_DPDK_LOG[$1]}" 2>/dev/null || echo 0; }

dpdk_alive() {
    local pid=${_DPDK_PID[$1]:-}
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# dpdk_wait_log NAME ERE SECS [OFFSET]: wait until the log (from byte OFFSET
# on) holds a line matching ERE; fails if testpmd died or time ran out.
dpdk_wait_log() {
    local name=$1 re=$2 secs=$3 off=${4:-0}
    local log=${_DPDK_LOG[$name]}
    local deadline=$(( $(date +%s%N) + secs * 1000000000 ))
    while :; do
        if tail -c +"$((off + 1))" "$log" 2>/dev/null | grep -Eq -- "$re"; then
            return 0
        fi
        if ! dpdk_alive "$name"; then
            _dpdk_msg "testpmd $name exited while waiting for /$re/"
            return 1
        fi
        if (( $(date +%s%N) > deadline )); then
            _dpdk_msg "timeout (${secs}s) waiting for /$re/ from testpmd $name"
            return 1
        fi
        sleep 0.1
    done
}

# dpdk_start NAME LOG [EAL ARGS...] -- [APP ARGS...]
# Adds --file-prefix, --huge-dir and -i itself.  Returns once testpmd shows
# its prompt (up to DPDK_START_TIMEOUT seconds, default 30).
dpdk_start() {
    local name=$1 log=$2
    shift 2
    local -a eal=() app=()
    while (( $# )) && [[ $1 != -- ]]; do eal+=("$1"); shift; done
    (( $# )) && shift
    app=("$@")
    if [[ -n ${_DPDK_PID[$name]:-} ]]; then
        _dpdk_msg "testpmd $name already started"
        return 1
    fi
    [[ -n $DPDK_HUGEDIR ]] || dpdk_hugepages_setup 1024

    local prefix="${DPDK_PREFIX_BASE}_$$_${name}"
    local fifo
    fifo=$(mktemp -u "${TMPDIR:-/tmp}/lwvt-testpmd-$$-${name}.XXXXXX")
    mkfifo -m 600 "$fifo" || return 1
    local fd
    # Read-write open of a fifo does not block and keeps a writer alive, so
    # testpmd never sees EOF on stdin until we close it.
    exec {fd}<>"$fifo"
    : > "$log"
    stdbuf -oL -eL "$DPDK_TESTPMD" "${eal[@]}" --file-prefix="$prefix" \
        --huge-dir="$DPDK_HUGEDIR" -- -i "${app[@]}" <&"$fd" >>"$log" 2>&1 &
    _DPDK_PID[$name]=$!
    _DPDK_FD[$name]=$fd
    _DPDK_LOG[$name]=$log
    _DPDK_PREFIX[$name]=$prefix
    _DPDK_FIFO[$name]=$fifo
    printf '%s\n' "$DPDK_TESTPMD ${eal[*]} --file-prefix=$prefix --huge-dir=$DPDK_HUGEDIR -- -i ${app[*]}" \
        > "$log.cmd"
    if ! dpdk_wait_log "$name" '^testpmd> ' "${DPDK_START_TIMEOUT:-30}"; then
        _dpdk_msg "testpmd $name did not start; last lines of $log:"
        tail -n 20 "$log" | sed 's/^/    /' >&2
        return 1
    fi
}

# dpdk_cmd NAME LINE...: send each LINE as one command.
dpdk_cmd() {
    local name=$1
    shift
    local fd=${_DPDK_FD[$name]:-}
    [[ -n $fd ]] || { _dpdk_msg "testpmd $name not running"; return 1; }
    local line
    for line in "$@"; do
        printf '%s\n' "$line" >&"$fd" || return 1
    done
}

# dpdk_sync NAME [SECS]: testpmd runs commands one by one and echoes each line
# as it reads it, so once the echo of a marker line is in the log, everything
# sent before it has finished (its output included).
dpdk_sync() {
    local name=$1 secs=${2:-20}
    _DPDK_SYNC_SEQ=$((_DPDK_SYNC_SEQ + 1))
    local marker="lwvt_sync_$$_${_DPDK_SYNC_SEQ}"
    local off
    off=$(_dpdk_log_size "$name")
    dpdk_cmd "$name" "$marker" || return 1
    dpdk_wait_log "$name" "$marker" "$secs" "$off"
}

# dpdk_query NAME LINE: run one command and print its output.
dpdk_query() {
    local name=$1 line=$2
    local off
    off=$(_dpdk_log_size "$name")
    dpdk_cmd "$name" "$line" || return 1
    dpdk_sync "$name" || return 1
    tail -c +"$((off + 1))" "${_DPDK_LOG[$name]}"
}

# dpdk_parse_port_stats: read `show port stats` output on stdin, print one line
# "PORT RX-packets TX-packets Rx-pps Tx-pps" per port block.  Other lines
# (vhost log messages interleaved by other threads) are ignored.
dpdk_parse_port_stats() {
    awk '
        /NIC statistics for port/ {
            for (i = 1; i <= NF; i++) if ($i == "port") port = $(i + 1)
            rx = tx = rxpps = txpps = ""
            next
        }
        port != "" && /RX-packets:/ { for (i = 1; i < NF; i++) if ($i == "RX-packets:") rx = $(i + 1) }
        port != "" && /TX-packets:/ { for (i = 1; i < NF; i++) if ($i == "TX-packets:") tx = $(i + 1) }
        port != "" && /Rx-pps:/     { for (i = 1; i < NF; i++) if ($i == "Rx-pps:") rxpps = $(i + 1) }
        port != "" && /Tx-pps:/     { for (i = 1; i < NF; i++) if ($i == "Tx-pps:") txpps = $(i + 1) }
        port != "" && /^ *#+ *$/ {
            print port, rx, tx, rxpps, txpps
            port = ""
        }
    '
}

# dpdk_port_stats NAME: "PORT RXPKTS TXPKTS RXPPS TXPPS" for every port.
# The pps figures are testpmd's own, over the time since the previous call.
dpdk_port_stats() {
    dpdk_query "$1" "show port stats all" | dpdk_parse_port_stats
}

# dpdk_nb_ports NAME: number of ports testpmd configured.
dpdk_nb_ports() {
    grep -Ec '^Port [0-9]+: ([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$' "${_DPDK_LOG[$1]}"
}

_dpdk_forget() {
    local name=$1
    local fd=${_DPDK_FD[$name]:-}
    [[ -n $fd ]] && exec {fd}>&-
    rm -f -- "${_DPDK_FIFO[$name]:-}"
    local prefix=${_DPDK_PREFIX[$name]:-}
    if [[ -n $prefix ]]; then
        # testpmd leaves its hugepage files behind (they keep their pages
        # reserved) and its runtime directory.
        rm -rf -- "${DPDK_HUGEDIR:-/nonexistent}/$prefix"map_* \
                  "${DPDK_HUGEDIR:-/nonexistent}/$prefix"mapseg_* \
                  "${DPDK_RUNDIR:?}/$prefix"
    fi
    unset "_DPDK_PID[$name]" "_DPDK_FD[$name]" "_DPDK_PREFIX[$name]" "_DPDK_FIFO[$name]"
}

# dpdk_stop NAME [SECS]: `quit`, then SIGTERM, then SIGKILL.  Returns
# testpmd's exit status (or 137/143 if it had to be killed).
dpdk_stop() {
    local name=$1 secs=${2:-15}
    local pid=${_DPDK_PID[$name]:-}
    [[ -n $pid ]] || return 0
    local i rc=0
    if kill -0 "$pid" 2>/dev/null; then
        dpdk_cmd "$name" "stop" "quit" 2>/dev/null
        for (( i = 0; i < secs * 10; i++ )); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            _dpdk_msg "testpmd $name did not quit within ${secs}s: SIGTERM"
            kill -TERM "$pid" 2>/dev/null
            for (( i = 0; i < 50; i++ )); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
        if kill -0 "$pid" 2>/dev/null; then
            _dpdk_msg "testpmd $name ignored SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    _dpdk_forget "$name"
    return "$rc"
}

dpdk_stop_all() {
    local name
    for name in "${!_DPDK_PID[@]}"; do
        dpdk_stop "$name" 5
    done
}

# ---------------------------------------------------------------------------
# The backend under test: lwvhostd, or DPDK's own vhost-user backend (testpmd
# with net_vhost ports and io forwarding) standing in for it (LWVT_BACKEND=dpdk,
# used to check the tests themselves, and by dpdk_compare.sh).
#
#   be_start KIND DIR NPORTS [CPU]   ports vm0..vmN-1 listening on DIR/vmI.sock
#   be_counters                      "PORT FROM_GUEST TO_GUEST DROPS" per port
#   be_stop                          stop it; fails if lwvhostd did not exit 0
#
# lwvhostd: LWVHOSTD / LWVHOSTCTL (default $BUILD/lwvhostd, $BUILD/lwvhostctl),
# LWVHOSTD_ARGS (extra arguments), stderr in DIR/lwvhostd.log.

BE_KIND=
BE_DIR=
BE_PID=

be_start() {
    local kind=$1 dir=$2 n=$3 cpu=${4:-}
    local i
    BE_KIND=$kind BE_DIR=$dir
    case $kind in
    lwvhostd)
        local -a args=()
        for (( i = 0; i < n; i++ )); do
            args+=(--port "vm$i,path=$dir/vm$i.sock")
        done
        local -a pin=()
        [[ -n $cpu ]] && pin=(taskset -c "$cpu")
        # shellcheck disable=SC2086
        "${pin[@]}" "$LWVHOSTD" "${args[@]}" --ctl "$dir/ctl.sock" ${LWVHOSTD_ARGS:-} \
            </dev/null >"$dir/lwvhostd.log" 2>&1 &
        BE_PID=$!
        local t
        for (( t = 0; t < 100; t++ )); do
            local all=1
            for (( i = 0; i < n; i++ )); do
                [[ -S $dir/vm$i.sock ]] || all=
            done
            [[ -S $dir/ctl.sock ]] || all=
            [[ -n $all ]] && return 0
            if ! kill -0 "$BE_PID" 2>/dev/null; then
                _dpdk_msg "lwvhostd exited at start"
                return 1
            fi
            sleep 0.1
        done
        _dpdk_msg "lwvhostd sockets did not appear within 10s"
        return 1
        ;;
    dpdk)
        local -a vdevs=()
        for (( i = 0; i < n; i++ )); do
            vdevs+=(--vdev "net_vhost$i,iface=$dir/vm$i.sock,queues=1")
        done
        # Forwarding lcore 1 on CPU ${cpu:-0}, the idle main lcore on the other.
        local fwd=${cpu:-0}
        dpdk_start be "$dir/backend.log" --lcores="0@$((1 - fwd)),1@$fwd" --no-pci -m 512 \
            "${vdevs[@]}" -- --forward-mode=io --nb-cores=1 --total-num-mbufs=16384 \
            || return 1
        dpdk_cmd be start
        ;;
    *)
        _dpdk_msg "unknown backend $kind"
        return 1
        ;;
    esac
}

be_alive() {
    case $BE_KIND in
    lwvhostd) [[ -n $BE_PID ]] && kill -0 "$BE_PID" 2>/dev/null ;;
    dpdk) dpdk_alive be ;;
    esac
}

# lwvd_json: the daemon's counters as JSON.
lwvd_json() {
    timeout 5 "$LWVHOSTCTL" -s "$BE_DIR/ctl.sock" stats --json
}

be_counters() {
    case $BE_KIND in
    lwvhostd)
        local json
        json=$(lwvd_json) || { _dpdk_msg "lwvhostctl stats --json failed"; return 1; }
        printf '%s\n' "$json" > "$BE_DIR/stats.json"
        lwvd_json_counters <<<"$json"
        ;;
    dpdk)
        # Backend port p: RX = frames the guest sent, TX = frames given to the guest.
        dpdk_port_stats be | awk '{ print "vm" $1, $2, $3, "-" }'
        ;;
    esac
}

be_stop() {
    local rc=0
    case $BE_KIND in
    lwvhostd)
        [[ -n $BE_PID ]] || return 0
        if kill -0 "$BE_PID" 2>/dev/null; then
            kill -TERM "$BE_PID"
            local t
            for (( t = 0; t < 100; t++ )); do
                kill -0 "$BE_PID" 2>/dev/null || break
                sleep 0.1
            done
            if kill -0 "$BE_PID" 2>/dev/null; then
                _dpdk_msg "lwvhostd did not exit within 10s of SIGTERM: SIGKILL"
                kill -KILL "$BE_PID" 2>/dev/null
            fi
        fi
        wait "$BE_PID" 2>/dev/null
        rc=$?
        BE_PID=
        (( rc == 0 )) || _dpdk_msg "lwvhostd exit status $rc"
        ;;
    dpdk)
        dpdk_stop be || rc=$?
        ;;
    esac
    return "$rc"
}

# lwvd_json_counters: `lwvhostctl stats --json` on stdin ->
# "PORT FROM_GUEST TO_GUEST DROPS" per vhost-user port.  In that JSON a port's
# "tx" is its guest's TX queues (every frame taken from the guest, malformed
# ones too, which are also counted in tx_drops) and "rx" its guest's RX queues
# (frames delivered; rx_drops: frames switched to it that found no buffer or
# no ready queue).  So frames in == delivered + rx_drops + tx_drops summed
# over the ports, as long as every frame has exactly one destination.
lwvd_json_counters() {
    jq -r '.ports[] | select(.type == "vhost")
           | "\(.name) \(.tx_packets) \(.rx_packets) \(.rx_drops + .tx_drops)"'
}

# dpdk_test_begin MB_LWV MB_DPDK TAG: the common start of a DPDK test script
# (NAME, BACKEND, LWVHOSTD and LWVHOSTCTL set): log and fail helpers, the
# requirements (testpmd; for the lwvhostd backend also lwvhostd, lwvhostctl
# and jq), MB_LWV (lwvhostd) or MB_DPDK (DPDK backend) megabytes of
# hugepages, the temp dir $T (/tmp/lwvt-TAG.*), and an EXIT trap that stops
# every process, shows the logs on failure (or with LWV_VERBOSE=1), removes
# $T (unless LWV_KEEP=1) and prints PASS or FAIL with the time taken.
log()  { echo "$NAME: $*"; }
fail() { echo "$NAME: FAIL: $*"; exit 1; }

dpdk_test_begin() {
    local mb_lwv=$1 mb_dpdk=$2 tag=$3
    dpdk_require
    if [[ $BACKEND == lwvhostd ]]; then
        [[ -x $LWVHOSTD ]] || fail "$LWVHOSTD not built (run make)"
        [[ -x $LWVHOSTCTL ]] || fail "$LWVHOSTCTL not built (run make)"
        command -v jq >/dev/null || fail "jq missing (apt-get install jq)"
        dpdk_hugepages_setup "$mb_lwv"
    else
        dpdk_hugepages_setup "$mb_dpdk"
    fi
    T=$(mktemp -d "/tmp/lwvt-$tag.XXXXXX") || fail "mktemp"
    _DPDK_TEST_START=$SECONDS
    trap _dpdk_test_end EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# shellcheck disable=SC2317  # run by the EXIT trap
_dpdk_test_end() {
    local rc=$?
    trap - EXIT INT TERM
    dpdk_stop_all
    be_stop >/dev/null 2>&1
    if { [[ $rc != 0 && $rc != 77 ]] || [[ -n ${LWV_VERBOSE:-} ]]; } && [[ -d $T ]]; then
        local f
        for f in "$T"/*.log "$T"/stats.json; do
            [[ -s $f ]] || continue
            echo "----- ${f##*/} -----"
            tail -n 120 "$f"
        done
        echo "----- end of logs -----"
    fi
    if [[ -n ${LWV_KEEP:-} ]]; then log "kept $T"; else rm -rf "$T"; fi
    if [[ $rc == 0 ]]; then
        log "PASS ($((SECONDS - _DPDK_TEST_START)) s)"
    elif [[ $rc != 77 ]]; then
        log "FAIL (rc=$rc, $((SECONDS - _DPDK_TEST_START)) s)"
    fi
    exit "$rc"
}
