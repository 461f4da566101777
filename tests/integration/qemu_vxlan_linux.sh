#!/bin/bash
# qemu_vxlan_linux.sh: qemu_ping.sh with the daemon reaching the namespace
# over VXLAN (--vxlan, VNI 42, UDP 4789 on a veth pair) where a Linux
# kernel VXLAN device with the same VNI holds the address the guests talk
# to: Linux as an independent peer.  Pings both ways and checksummed TCP
# transfers both ways; the guests' NICs carry host_mtu=1450.
# Env and exit codes: as qemu_ping.sh (77: skipped).
set -u
cd "$(dirname "$0")/../.." || exit 1
LWV_LINK=vxlan exec bash tests/integration/qemu_ping.sh
