#!/bin/bash
# dpdk_two_procs.sh: two testpmd processes, one port each, as two VMs on
# lwvhostd's switch: a txonly one sends 64-byte frames to the MAC of an rxonly
# one, which must receive them.
#
#   testpmd "tx" (txonly) --vhost-user vm0--+
#                                           +-- lwvhostd
#   testpmd "rx" (rxonly) --vhost-user vm1--+
#
# The rx side starts with `start tx_first` (one burst of 32 frames to the tx
# VM), so the switch has learned its MAC before the traffic comes.  On 2 cores
# the two pollers and the daemon time-share CPUs: this is a functional test,
# its rate means nothing.  Checks: rx received frames; rx received no more
# than the daemon delivered to it; the daemon took from vm0 exactly what tx sent.
#
# Usage: tests/integration/dpdk_two_procs.sh
# Env: BUILD (default build); LWVT_BACKEND=dpdk uses DPDK's own vhost backend
#      instead; LWVT_SECONDS (default 3) of traffic; LWV_KEEP=1 keeps the temp
#      dir; LWV_VERBOSE=1 prints the logs even on success.
# Exit: 0 pass, 77 skipped (no dpdk-testpmd or no hugepages), else fail.
# Needs (Debian 12): dpdk-dev (dpdk-testpmd; it pulls in librte-net-virtio23 and
#      librte-net-vhost23), jq.
set -u

cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
LWVHOSTD=${LWVHOSTD:-$BUILD/lwvhostd}
LWVHOSTCTL=${LWVHOSTCTL:-$BUILD/lwvhostctl}
BACKEND=${LWVT_BACKEND:-lwvhostd}
SECS=${LWVT_SECONDS:-3}
NAME=dpdk_two_procs
# shellcheck source=tests/integration/lib-dpdk.sh
. tests/integration/lib-dpdk.sh

dpdk_test_begin 1024 1536 twoprocs

MAC_TX=52:54:00:00:20:00
MAC_RX=52:54:00:00:20:01

log "backend: $BACKEND"
be_start "$BACKEND" "$T" 2 || fail "cannot start the backend"

# Receiver first, so nothing the sender sends finds no port.
dpdk_start rx "$T/testpmd-rx.log" --lcores=0@0,1@1 --no-pci --single-file-segments -m 512 \
    --vdev "net_virtio_user0,path=$T/vm1.sock,queues=1,mac=$MAC_RX" \
    -- --forward-mode=rxonly --nb-cores=1 --txpkts=64 --total-num-mbufs=16384 \
    "--eth-peer=0,$MAC_TX" \
    || fail "rx testpmd did not start"
[[ $(dpdk_nb_ports rx) == 1 ]] || fail "rx testpmd has no port (did virtio-user connect?)"
dpdk_cmd rx "start tx_first"

dpdk_start tx "$T/testpmd-tx.log" --lcores=0@1,1@0 --no-pci --single-file-segments -m 512 \
    --vdev "net_virtio_user0,path=$T/vm0.sock,queues=1,mac=$MAC_TX" \
    -- --forward-mode=txonly --nb-cores=1 --txpkts=64 --total-num-mbufs=16384 \
    "--eth-peer=0,$MAC_RX" \
    || fail "tx testpmd did not start"
[[ $(dpdk_nb_ports tx) == 1 ]] || fail "tx testpmd has no port (did virtio-user connect?)"

log "txonly -> rxonly for ${SECS}s"
dpdk_cmd tx start
sleep "$SECS"
be_alive || fail "backend died during traffic"
dpdk_cmd tx stop
dpdk_sync tx || fail "tx testpmd does not answer"
sleep 1   # the receiver drains its ring
dpdk_cmd rx stop
dpdk_sync rx || fail "rx testpmd does not answer"

txs=$(dpdk_port_stats tx) || fail "no port stats from tx testpmd"
rxs=$(dpdk_port_stats rx) || fail "no port stats from rx testpmd"
be=$(be_counters) || fail "no counters from the backend"
be_alive || fail "backend died"

read -r _ _ sent _ <<<"$txs"
read -r _ got _ <<<"$rxs"
read -r _ in0 _ _ <<<"$(awk '$1 == "vm0"' <<<"$be")"
read -r _ _ out1 _ <<<"$(awk '$1 == "vm1"' <<<"$be")"
log "tx sent ${sent:-?}; $BACKEND took ${in0:-?} from vm0, delivered ${out1:-?} to vm1; rx received ${got:-?}"

ok=1
bad() { log "$*"; ok=; }
if [[ ${sent:-} =~ ^[0-9]+$ && ${got:-} =~ ^[0-9]+$ && ${in0:-} =~ ^[0-9]+$ && ${out1:-} =~ ^[0-9]+$ ]]; then
    (( sent > 0 )) || bad "tx testpmd sent nothing"
    (( got > 0 )) || bad "rx testpmd received nothing"
    (( in0 == sent )) || bad "tx sent $sent but $BACKEND took $in0 from vm0"
    (( got <= out1 )) || bad "rx received $got, more than the $out1 $BACKEND delivered"
else
    bad "missing counters"
fi

dpdk_stop tx || bad "tx testpmd exited with status $?"
dpdk_stop rx || bad "rx testpmd exited with status $?"
be_stop || bad "$BACKEND did not stop cleanly"
[[ -n $ok ]] || fail "see above"
exit 0
