#!/bin/bash
# qemu_packed.sh: qemu_ping.sh with packed virtqueues (virtio 1.2, 2.8):
# first both guests' NICs with packed=on, then guest 1 packed and guest 2
# split, so a packed and a split guest talk through the switch.  Each run
# checks from the negotiated features (lwvhostctl ports) that the layout
# is the one asked for.
# Env and exit codes: as qemu_ping.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
for mode in all 1; do
    echo "qemu_packed: LWV_PACKED=$mode"
    LWV_PACKED=$mode bash tests/integration/qemu_ping.sh
    rc=$?
    [ $rc = 0 ] || exit $rc
done
exit 0
