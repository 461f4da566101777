#!/bin/bash
# qemu_vxlan_two_daemons.sh: two lwvhostd as two hosts, a guest on each,
# joined by VXLAN (VNI 42), with a Linux kernel VXLAN device in a network
# namespace as the third VTEP (qemu_ping.sh with LWV_LINK=vxlan2d): every
# VTEP lists the other two, so ARP broadcasts are replicated by each to
# both others and each learns where the MACs are.  Guest 1 pings guest 2
# (across the daemons) and the namespace and fetches 4 MiB over HTTP from
# both (md5 checked); the namespace pings guest 2 and fetches its file.
# Env and exit codes: as qemu_ping.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWV_LINK=vxlan2d exec bash tests/integration/qemu_ping.sh
