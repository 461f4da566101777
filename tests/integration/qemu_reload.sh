#!/bin/bash
# qemu_reload.sh: SIGHUP under running QEMU guests (issue 12, "configuration
# that survives restarts").
#
#   guest 1 (10.200.0.2) --vm1.sock--+
#                                    +-- lwvhostd --config lwvhostd.conf
#   guest 2 (10.200.0.3) --vm2.sock--+      (+ ports added and removed)
#
# lwvhostd reads its ports from a config file.  While guest 1 pings guest 2
# ten times a second, the file changes three times and the daemon gets
# SIGHUP each time: an unused port is removed, others are added (one of
# them a tap), guest 1's port changes only its policy, the MAC table's age
# changes.  A port is also added and removed with lwvhostctl in between.
# Passes when:
#   - the guests see nothing: guest 1's carrier never changed during the
#     pings (/sys/class/net/eth0/carrier_changes before = after), every
#     ping was answered, none twice;
#   - lwvhostd never reconnected vm1 or vm2 (connects stays 1), vm1 runs
#     its new policy, the removed port and its socket are gone, the added
#     ones listen;
#   - lwvhostd shuts down cleanly.
# Env: BUILD (default build), LWV_KEEP=1, LWV_VERBOSE=1.
# Exit: 0 pass, 77 skipped, else fail.
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
NAME=qemu_reload
. tests/integration/lib-qemu.sh

qemu_require
D=$BUILD/lwvhostd
CTL=$BUILD/lwvhostctl
[ -x "$D" ] && [ -x "$CTL" ] || fail "$D or $CTL not built (run make)"
command -v jq >/dev/null 2>&1 || skip "jq missing (apt-get install jq)"
TAPS=1
{ [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; } || TAPS=
IMG=$BUILD/guest
qemu_guest_image "$IMG"

T=$(mktemp -d /tmp/lwv-qemu-reload.XXXXXX) || fail "mktemp"
DPID=
QPID1=
QPID2=
START=$SECONDS
CONF=$T/lwvhostd.conf

show_logs() {
    dump_logs 120 "$T"/g1.log "$T"/g2.log "$T"/qemu1.out "$T"/qemu2.out "$T"/lwvhostd.log
}

cleanup() {
    kill_wait "$QPID1" 5
    kill_wait "$QPID2" 5
    kill_wait "$DPID" 5
}
on_exit cleanup

ctl() { timeout 10 "$CTL" -s "$T/ctl.sock" "$@"; }
ports_json() { ctl ports --json; }
has_port() { ports_json | jq -e --arg n "$1" 'any(.ports[]; .name == $n)' >/dev/null; }
connects() { ports_json | jq -r --arg n "$1" '.ports[] | select(.name == $n) | .connects'; }
guest_says() { [ -f "$T/g1.log" ] && clean_log "$T/g1.log" | grep -q "LWV-RESULT $1"; }

# write_conf LINES...: the config file, replaced whole (as an editor does).
write_conf() {
    printf '%s\n' "# $NAME, version $((++CONF_VERSION))" "$@" >"$CONF.new" && mv "$CONF.new" "$CONF"
}
CONF_VERSION=0

# reload WHAT: SIGHUP and wait until the log says the reload is done.
reload() {
    local before
    before=$(grep -c 'reloaded the configuration' "$T/lwvhostd.log")
    log "SIGHUP: $1"
    kill -HUP "$DPID"
    wait_for 10 "the reload" sh -c "[ \$(grep -c 'reloaded the configuration' '$T/lwvhostd.log') -gt $before ]"
}

V1="port vm1,path=$T/vm1.sock,mac=52:54:00:00:00:02"
V2="port vm2,path=$T/vm2.sock,mac=52:54:00:00:00:03"
write_conf "$V1" "$V2" "port spare,path=$T/spare.sock"
"$D" --config "$CONF" --ctl "$T/ctl.sock" </dev/null >"$T/lwvhostd.log" 2>&1 &
DPID=$!
wait_for 10 "lwvhostd's sockets" test -S "$T/vm1.sock" -a -S "$T/vm2.sock" -a -S "$T/spare.sock"

# Guest 1: wait for the peer, note the carrier count, ping 200 times at
# 0.1 s (20 s, while the test reloads), note it again.
G1_SCRIPT=$(cat <<'GUEST' | gzip -9 | base64 -w0
t=10.200.0.3
i=0
until ping -c 1 -W 1 $t >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -ge 90 ] && { lwv-result peer $t fail; exit 1; }
done
c0=$(cat /sys/class/net/eth0/carrier_changes)
lwv-result phase ping ok
ping -i 0.1 -c 200 -W 5 $t >/tmp/ping.out 2>&1
c1=$(cat /sys/class/net/eth0/carrier_changes)
rx=$(grep -c 'bytes from' /tmp/ping.out)
dup=$(grep -c DUP /tmp/ping.out)
lwv-result pings $t ok rx=$rx dup=$dup
lwv-result carrier eth0 ok before=$c0 after=$c1
GUEST
)
log "booting guest 2 (10.200.0.3) and guest 1 (10.200.0.2)"
start_guest 2 52:54:00:00:00:03 10.200.0.3/24 "lwv.run=serve:150 lwv.timeout=160" \
    -chardev "socket,id=c0,path=$T/vm2.sock" -netdev vhost-user,id=n0,chardev=c0
QPID2=$!
start_guest 1 52:54:00:00:00:02 10.200.0.2/24 \
    "lwv.run=script lwv.timeout=140 lwv.script=$G1_SCRIPT" \
    -chardev "socket,id=c0,path=$T/vm1.sock" -netdev vhost-user,id=n0,chardev=c0
QPID1=$!

wait_for 120 "guest 1 to reach guest 2" guest_says "phase ping"
sleep 2
EXTRA=()
[ -n "$TAPS" ] && EXTRA=("tap lwvrl$$")
write_conf "$V1,policy=interval:50" "$V2" "port new1,path=$T/new1.sock,queues=2" "fdb-age 60" \
    "${EXTRA[@]}"
reload "spare removed, new1${TAPS:+ and a tap} added, vm1's policy changed, fdb-age 60"
sleep 2
ctl port add "run1,path=$T/run1.sock" >/dev/null || fail "port add run1"
ctl port del run1 >/dev/null || fail "port del run1"
sleep 1
write_conf "$V1,policy=interval:50" "$V2" "port new2,path=$T/new2.sock"
reload "new1${TAPS:+ and the tap} removed, new2 added"
sleep 2
write_conf "$V1,policy=adaptive" "$V2" "port new2,path=$T/new2.sock"
reload "vm1's policy adaptive"

wait_for 60 "guest 1 to finish its pings" guest_says "carrier"
ok=1
results "$T/g1.log" | sed 's/^/  g1: /'
sum=$(results "$T/g1.log" | sed -n 's/^LWV-RESULT pings 10.200.0.3 ok //p')
rx= dup=
eval "$(echo "$sum" | tr ' ' '\n' | grep -E '^(rx|dup)=[0-9]+$')"
[ "${rx:-0}" = 200 ] || { log "pings answered: ${rx:-none}/200"; ok=; }
[ "${dup:-1}" = 0 ] || { log "duplicate ping replies: $dup"; ok=; }
car=$(results "$T/g1.log" | sed -n 's/^LWV-RESULT carrier eth0 ok //p')
before= after=
eval "$(echo "$car" | tr ' ' '\n' | grep -E '^(before|after)=[0-9]+$')"
if [ -n "$before" ] && [ "$before" = "$after" ]; then
    log "guest 1's carrier did not change during the reloads (carrier_changes $before)"
else
    log "guest 1's carrier changed: carrier_changes before=${before:-?} after=${after:-?}"; ok=
fi
for p in vm1 vm2; do
    c=$(connects $p)
    [ "$c" = 1 ] || { log "port $p connected $c times (a reload touched it)"; ok=; }
done
pol=$(ctl policy | awk '$1 == "vm1" { print $2 }')
[ "$pol" = "adaptive:50" ] || { log "vm1's policy is '$pol', not adaptive:50"; ok=; }
has_port spare && { log "port spare is still there"; ok=; }
[ -e "$T/spare.sock" ] && { log "spare's socket is still there"; ok=; }
has_port new1 && { log "port new1 is still there"; ok=; }
has_port new2 && [ -S "$T/new2.sock" ] || { log "port new2 does not listen"; ok=; }
[ -n "$TAPS" ] && ip link show "lwvrl$$" >/dev/null 2>&1 && { log "the tap is still there"; ok=; }
has_result "$T/g1.log" "script - ok" || { log "guest 1's script failed"; ok=; }
log "lwvhostctl ports:"
ctl ports | sed 's/^/  /'

kill "$DPID"
wait "$DPID"
drc=$?
DPID=
[ $drc = 0 ] || { log "lwvhostd exited with $drc on SIGTERM"; ok=; }
[ -n "$ok" ] || fail "see the logs below"
log "passed in $((SECONDS - START)) s"
exit 0
