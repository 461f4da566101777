#!/bin/bash
# dpdk_flowgen.sh: two "VMs" played by ONE testpmd (two net_virtio_user ports,
# flowgen, 64-byte frames) send to each other through lwvhostd's switch.
#
#   testpmd port 0 --vhost-user vm0--+
#                                    +-- lwvhostd (learning switch)
#   testpmd port 1 --vhost-user vm1--+
#
# After a few seconds the generator stops; testpmd then only receives for a
# second (drains what was in flight), and the counts are checked:
#   - both testpmd ports received frames;
#   - each port: frames testpmd sent == frames lwvhostd took from that guest,
#     frames testpmd received == frames lwvhostd delivered to that guest;
#   - lwvhostd: frames in == frames delivered + frames it counted as dropped.
#
# Usage: tests/integration/dpdk_flowgen.sh
# Env: BUILD (default build); LWVT_BACKEND=dpdk runs the same test against
#      DPDK's own vhost backend (testpmd net_vhost, io forwarding) instead;
#      LWVT_SECONDS (default 3) of traffic; LWVT_FE_DEVARGS extra
#      net_virtio_user devargs (e.g. "packed_vq=1": packed virtqueues, then
#      checked in lwvhostd's negotiated features); LWV_KEEP=1 keeps the temp dir;
#      LWV_VERBOSE=1 prints the logs even on success.
# Exit: 0 pass, 77 skipped (no dpdk-testpmd or no hugepages), else fail.
# Needs (Debian 12): dpdk-dev (dpdk-testpmd; it pulls in librte-net-virtio23 and
#      librte-net-vhost23), jq.
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
LWVHOSTD=${LWVHOSTD:-$BUILD/lwvhostd}
LWVHOSTCTL=${LWVHOSTCTL:-$BUILD/lwvhostctl}
BACKEND=${LWVT_BACKEND:-lwvhostd}
DEVARGS=${LWVT_FE_DEVARGS:+,$LWVT_FE_DEVARGS}
SECS=${LWVT_SECONDS:-3}
NAME=dpdk_flowgen
# shellcheck source=tests/integration/lib-dpdk.sh
. tests/integration/lib-dpdk.sh

dpdk_test_begin 512 1024 flowgen

MAC0=52:54:00:00:10:00
MAC1=52:54:00:00:10:01

log "backend: $BACKEND"
be_start "$BACKEND" "$T" 2 || fail "cannot start the backend"

# Frontend: forwarding lcore on CPU 1, the (idle) main lcore on CPU 0.
# Frames sent on port 0 are addressed to port 1's MAC and vice versa.
dpdk_start fe "$T/testpmd.log" --lcores=0@0,1@1 --no-pci --single-file-segments -m 512 \
    --vdev "net_virtio_user0,path=$T/vm0.sock,queues=1,mac=$MAC0$DEVARGS" \
    --vdev "net_virtio_user1,path=$T/vm1.sock,queues=1,mac=$MAC1$DEVARGS" \
    -- --forward-mode=flowgen --nb-cores=1 --txpkts=64 --total-num-mbufs=16384 \
    "--eth-peer=0,$MAC1" "--eth-peer=1,$MAC0" \
    || fail "testpmd did not start"
n=$(dpdk_nb_ports fe)
[[ $n == 2 ]] || fail "testpmd has $n ports, expected 2 (did virtio-user connect?)"

log "flowgen for ${SECS}s"
dpdk_cmd fe start
sleep "$SECS"
be_alive || fail "backend died during traffic"
# The ring layout asked for must be the one negotiated: VIRTIO_F_RING_PACKED
# is bit 34 of the features lwvhostd shows for each port.
if [[ $BACKEND == lwvhostd ]]; then
    want=0
    [[ $DEVARGS == *packed_vq=1* ]] && want=1
    for p in vm0 vm1; do
        f=$(timeout 5 "$LWVHOSTCTL" -s "$T/ctl.sock" ports --json |
            jq -r --arg p "$p" '.ports[] | select(.name == $p) | .features')
        [[ $f == 0x* ]] || fail "no negotiated features for $p"
        (( (f >> 34 & 1) == want )) || fail "$p: features $f, RING_PACKED expected $want"
        log "$p: features $f ($( ((want)) && echo packed || echo split) rings)"
    done
fi
dpdk_cmd fe stop "set fwd rxonly" start
sleep 1
dpdk_cmd fe stop
dpdk_sync fe || fail "testpmd does not answer"
[[ $BACKEND == lwvhostd ]] && timeout 5 "$LWVHOSTCTL" -s "$T/ctl.sock" rings >"$T/rings.txt" 2>&1
sleep 0.2

fe=$(dpdk_port_stats fe) || fail "no port stats from testpmd"
be=$(be_counters) || fail "no counters from the backend"
be_alive || fail "backend died"

echo "testpmd (port rx tx):"
awk '{ print "  port " $1 ": rx " $2 ", tx " $3 }' <<<"$fe"
echo "$BACKEND (port from_guest to_guest drops):"
awk '{ print "  " $1 ": from guest " $2 ", to guest " $3 ", drops " $4 }' <<<"$be"

ok=1
bad() { log "$*"; ok=; }
sum_in=0 sum_out=0 sum_drop=0
for p in 0 1; do
    read -r _ rx tx _ <<<"$(awk -v p="$p" '$1 == p' <<<"$fe")"
    read -r _ in out drop <<<"$(awk -v p="vm$p" '$1 == p' <<<"$be")"
    [[ ${rx:-} =~ ^[0-9]+$ && ${tx:-} =~ ^[0-9]+$ ]] || { bad "no testpmd counters for port $p"; continue; }
    [[ ${in:-} =~ ^[0-9]+$ && ${out:-} =~ ^[0-9]+$ ]] || { bad "no $BACKEND counters for vm$p"; continue; }
    (( rx > 0 )) || bad "testpmd port $p received nothing"
    (( tx > 0 )) || bad "testpmd port $p sent nothing"
    (( tx == in )) || bad "port $p: testpmd sent $tx, $BACKEND took $in from vm$p (diff $((tx - in)))"
    (( rx == out )) || bad "port $p: testpmd received $rx, $BACKEND delivered $out to vm$p (diff $((out - rx)))"
    sum_in=$((sum_in + in)) sum_out=$((sum_out + out))
    [[ $drop =~ ^[0-9]+$ ]] && sum_drop=$((sum_drop + drop))
done
if [[ $BACKEND == lwvhostd && -n $ok ]]; then
    (( sum_in == sum_out + sum_drop )) ||
        bad "lwvhostd: $sum_in frames in, $sum_out delivered + $sum_drop dropped (missing $((sum_in - sum_out - sum_drop)))"
fi
[[ -n $ok ]] && log "received $sum_out of $sum_in frames ($sum_drop dropped by $BACKEND)"

dpdk_stop fe || bad "testpmd exited with status $?"
be_stop || bad "$BACKEND did not stop cleanly"
[[ -n $ok ]] || fail "see above"
exit 0
