#!/bin/bash
# qemu_reconnect.sh: lwvhostd killed with SIGKILL and restarted under running
# QEMU guests (issue 5, "reconnect and restart").
#
#   guest 1 (10.200.0.2) --vm1.sock--+
#                                    +-- lwvhostd --port ...,client=on
#   guest 2 (10.200.0.3) --vm2.sock--+
#
# QEMU listens on the vhost-user sockets (chardev server=on,wait=off) and
# lwvhostd connects to them (client=on), so a new lwvhostd can pick the
# devices up again; QEMU then restores each ring from its used index, as
# when any vhost-user backend dies.  Guest 1 pings guest 2 ten times a
# second, then fetches a 4 MiB file from it three times; the daemon is
# SIGKILLed and restarted once during the pings and once during the
# transfers.  (QEMU then prints "vhost VQ N ring restore failed": its
# GET_VRING_BASE found no backend, so it falls back to the used index.)
# Passes when:
#   - the pings resume within LWV_RESUME_S (default 2) seconds of the
#     restart, with no duplicate replies;
#   - every transfer arrives whole (md5);
#   - neither guest was reset: one boot each, no virtio or watchdog errors
#     in the guest kernel log (a descriptor completed twice makes virtio_net
#     complain "id N is not a head"; one lost on TX stalls its queue and
#     trips the TX watchdog);
#   - once traffic is quiet, every ring as the last daemon sees it has
#     nothing waiting and nothing in flight (avail == last_avail == used),
#     and the used index in guest memory is the one it published;
#   - each QEMU still runs the same process, and the last daemon shuts down
#     cleanly.
# With LWV_PACKED=all (lib-qemu.sh) the guests' NICs use packed
# virtqueues: QEMU then has no index to restore a ring from and resends the
# base it gave the first daemon; the daemons keep their positions in
# --state-dir (rstate.h) and resume from there.
# Env: BUILD (default build), LWV_PACKED, LWV_DOWN_S (seconds the daemon stays dead,
#      default 0.5), LWV_RESUME_S, LWV_DAEMON_ARGS, LWV_KEEP=1, LWV_VERBOSE=1.
# Exit: 0 pass, 77 skipped, else fail.
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
DOWN_S=${LWV_DOWN_S:-0.5}
RESUME_S=${LWV_RESUME_S:-2}
NAME=qemu_reconnect
. tests/integration/lib-qemu.sh

qemu_require
D=$BUILD/lwvhostd
CTL=$BUILD/lwvhostctl
[ -x "$D" ] && [ -x "$CTL" ] || fail "$D or $CTL not built (run make)"
command -v jq >/dev/null 2>&1 || skip "jq missing (apt-get install jq)"
IMG=$BUILD/guest
qemu_guest_image "$IMG"

T=$(mktemp -d /tmp/lwv-qemu-reconnect.XXXXXX) || fail "mktemp"
DPID=
NDAEMON=0
QPID1=
QPID2=
START=$SECONDS

show_logs() {
    dump_logs 120 "$T"/g1.log "$T"/g2.log "$T"/qemu1.out "$T"/qemu2.out "$T"/lwvhostd.*.log
}

cleanup() {
    kill_wait "$QPID1" 5
    kill_wait "$QPID2" 5
    kill_wait "$DPID" 5
}
on_exit cleanup

start_daemon() {
    NDAEMON=$((NDAEMON + 1))
    "$D" --port "vm1,path=$T/vm1.sock,client=on" --port "vm2,path=$T/vm2.sock,client=on" \
        --ctl "$T/ctl.sock" --state-dir "$T" ${LWV_DAEMON_ARGS:-} </dev/null >"$T/lwvhostd.$NDAEMON.log" 2>&1 &
    DPID=$!
    log "lwvhostd #$NDAEMON started (pid $DPID)"
}

# Both ports connected and their TX rings started by QEMU.
both_running() {
    local j
    j=$(timeout 5 "$CTL" -s "$T/ctl.sock" rings --json 2>/dev/null) || return 1
    [ "$(echo "$j" | jq '[.rings[] | select(.dir == "tx" and .state == "ready")] | length')" = 2 ]
}

# kill_restart WHY: SIGKILL the daemon (nothing of it runs any more: no
# cleanup, no GET_VRING_BASE answered), wait DOWN_S, start a new one.
kill_restart() {
    alive "$DPID" || fail "lwvhostd #$NDAEMON died before the planned kill"
    log "SIGKILL lwvhostd #$NDAEMON ($1)"
    kill -9 "$DPID"
    wait "$DPID" 2>/dev/null
    sleep "$DOWN_S"
    start_daemon
    wait_for 15 "lwvhostd #$NDAEMON to serve both guests again" both_running
    log "lwvhostd #$NDAEMON serves both guests again"
}

guest_says() { clean_log "$T/g1.log" | grep -q "LWV-RESULT $1"; }

# ---- guests (they listen; the daemon connects) -----------------------------
BIG=4194304
big_file() { yes 0123456789abcdef | head -c $BIG; }
BIG_MD5=$(big_file | md5sum | cut -d' ' -f1)
b64() { gzip -9 | base64 -w0; }
G2_SCRIPT=$(printf '%s\n' 'mkdir -p /www' \
    "yes 0123456789abcdef | head -c $BIG > /www/big" \
    'httpd -p 80 -h /www && lwv-result http 10.200.0.3 ok' | b64)
# Guest 1: wait for the peer, ping it 300 times at 0.1 s, fetch the file
# three times, then stay quiet for the ring check and report its kernel log.
G1_SCRIPT=$(cat <<'GUEST' | b64
t=10.200.0.3
i=0
until ping -c 1 -W 1 $t >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -ge 90 ] && { lwv-result peer $t fail; exit 1; }
done
lwv-result phase ping ok
ping -i 0.1 -c 300 -W 5 $t >/tmp/ping.out 2>&1
awk '/seq=/ { for (k = 1; k <= NF; k++) {
                  if ($k ~ /^seq=/) s = substr($k, 5) + 0
                  if ($k ~ /^time=/) { t = substr($k, 6) + 0; if (t > max) { max = t; maxat = s } } }
              if ($0 ~ /DUP/) { dup++; next }
              n++; if (n > 1 && s - prev - 1 > gap) { gap = s - prev - 1; gapat = prev + 1 }; prev = s }
     END { printf "rx=%d gap=%d dup=%d maxms=%d gapat=%d maxat=%d\n", n, gap, dup, max, gapat, maxat }' \
    /tmp/ping.out >/tmp/ping.sum
grep -v '^64 bytes' /tmp/ping.out | head -n 20
lwv-result pings $t ok $(cat /tmp/ping.sum)
lwv-result phase wget ok
rc=0
for k in 1 2 3; do
    if wget -q -O /tmp/big http://$t/big; then
        lwv-result wget$k $t ok $(md5sum </tmp/big | cut -d" " -f1) $(wc -c </tmp/big)
    else
        lwv-result wget$k $t fail; rc=1
    fi
    rm -f /tmp/big
done
lwv-result phase quiet ok
sleep 8
bad=$(dmesg | grep -iE 'NETDEV WATCHDOG|transmit queue .* timed out|not a head|virtio.*(unexpected|corrupt|err|fail|bad)|hung task' | head -n 5)
if [ -n "$bad" ]; then
    echo "$bad"; lwv-result dmesg - fail
    rc=1
else
    lwv-result dmesg - ok
fi
lwv-result carrier eth0 ok changes=$(cat /sys/class/net/eth0/carrier_changes)
exit $rc
GUEST
)

log "booting guest 2 (10.200.0.3, serving) and guest 1 (10.200.0.2)"
start_guest 2 52:54:00:00:00:03 10.200.0.3/24 \
    "lwv.run=script lwv.run=serve:200 lwv.timeout=210 lwv.script=$G2_SCRIPT" \
    -chardev "socket,id=c0,path=$T/vm2.sock,server=on,wait=off" -netdev vhost-user,id=n0,chardev=c0
QPID2=$!
start_guest 1 52:54:00:00:00:02 10.200.0.2/24 \
    "lwv.run=script lwv.timeout=190 lwv.script=$G1_SCRIPT" \
    -chardev "socket,id=c0,path=$T/vm1.sock,server=on,wait=off" -netdev vhost-user,id=n0,chardev=c0
QPID1=$!
wait_for 20 "QEMU's vhost-user sockets" test -S "$T/vm1.sock" -a -S "$T/vm2.sock"

start_daemon
wait_for 90 "guest 1 to reach guest 2" guest_says "phase ping"
sleep 3
kill_restart "guest 1 pinging"
RESTART1=$SECONDS

wait_for 120 "guest 1 to start the transfers" guest_says "phase wget"
sleep 1.5
kill_restart "guest 1 fetching a 4 MiB file over TCP"

wait_for 120 "guest 1 to finish its transfers" guest_says "phase quiet"
# Traffic has stopped: let stray frames (ARP, TCP teardown) settle, then
# every ring must be at rest and agree with guest memory.
rings_at_rest() {
    local j
    j=$(timeout 5 "$CTL" -s "$T/ctl.sock" rings --json 2>/dev/null) || return 1
    echo "$j" >"$T/rings.json"
    # A packed ring has no index in guest memory: its positions (with wrap
    # counters) must agree and nothing may wait on a TX ring.
    echo "$j" | jq -e '(.rings | length) == 4 and all(.rings[];
        .state == "ready" and .broken == null and
        if .layout == "packed" then
            .last_avail_idx == .used_idx and .avail_wrap == .used_wrap and
            (.dir == "rx" or .waiting == 0)
        else
            .used_idx == .guest_used_idx and .last_avail_idx == .used_idx and
            (if .dir == "tx" then .avail_idx == .last_avail_idx
             else ((.avail_idx - .used_idx + 65536) % 65536) <= .size end)
        end)' >/dev/null
}
ok=1
if wait_for_rest=$(for _ in $(seq 50); do rings_at_rest && { echo yes; break; }; sleep 0.1; done) &&
   [ "$wait_for_rest" = yes ]; then
    log "rings at rest and consistent with guest memory:"
else
    log "rings not at rest or inconsistent after 5 s:"; ok=
fi
timeout 5 "$CTL" -s "$T/ctl.sock" rings | sed 's/^/  /'
connects=$(timeout 5 "$CTL" -s "$T/ctl.sock" ports --json | jq -c '[.ports[] | .connects]')
[ "$connects" = "[1,1]" ] || { log "daemon #$NDAEMON connected more than once per port: $connects"; ok=; }

n=0
while alive "$QPID1"; do
    n=$((n + 1))
    [ $n -ge 300 ] && fail "guest 1 still running 30 s after its transfers"
    sleep 0.1
done
wait "$QPID1"
q1rc=$?
QPID1=
results "$T/g1.log" | sed 's/^/  g1: /'

[ $q1rc = 0 ] || { log "guest 1 qemu exited with $q1rc"; ok=; }
alive "$QPID2" || { log "guest 2's QEMU is gone"; ok=; }
for g in 1 2; do
    boots=$(results "$T/g$g.log" | grep -c '^LWV-RESULT boot ')
    [ "$boots" = 1 ] || { log "guest $g booted $boots times (reset?)"; ok=; }
done
sum=$(results "$T/g1.log" | sed -n 's/^LWV-RESULT pings 10.200.0.3 ok //p')
if [ -z "$sum" ]; then
    log "no ping summary from guest 1"; ok=
else
    rx= gap= dup= maxms=
    eval "$(echo "$sum" | tr ' ' '\n' | grep -E '^(rx|gap|dup|maxms)=[0-9]+$')"
    # Requests the guest queued while no daemon ran stay in its TX ring and
    # are sent once a new daemon takes over, so they are answered late, not
    # lost: the outage shows as the slowest round trip, and a lost ping as
    # a gap in the sequence numbers.
    limit_ms=$(awk -v d="$DOWN_S" -v r="$RESUME_S" 'BEGIN { printf "%d", (d + r) * 1000 }')
    log "pings: $rx/300 answered, slowest ${maxms} ms (daemon down ${DOWN_S} s; limit" \
        "${limit_ms} ms), longest run lost $gap, $dup duplicates"
    [ "${maxms:-999999}" -le "$limit_ms" ] || { log "traffic took too long to resume"; ok=; }
    [ "${dup:-1}" = 0 ] || { log "duplicate ping replies"; ok=; }
    [ "${gap:-999}" -le $((limit_ms / 100)) ] || { log "more pings lost in a row than the outage explains"; ok=; }
fi
for k in 1 2 3; do
    has_result "$T/g1.log" "wget$k 10.200.0.3 ok $BIG_MD5 $BIG" ||
        { log "transfer $k incomplete or corrupt"; ok=; }
done
has_result "$T/g1.log" "dmesg - ok" || { log "guest 1's kernel log shows virtio or watchdog errors"; ok=; }
has_result "$T/g1.log" "script - ok" || { log "guest 1's script failed"; ok=; }

# The last daemon exits cleanly on SIGTERM.
kill "$DPID"
wait "$DPID"
drc=$?
DPID=
[ $drc = 0 ] || { log "lwvhostd #$NDAEMON exited with $drc on SIGTERM"; ok=; }
[ -n "$ok" ] || fail "see the logs below"
log "passed after $((SECONDS - RESTART1)) s of reconnect checks"
exit 0
